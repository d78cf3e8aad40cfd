"""The ops server's request-head parser and response writer (pure)."""

from __future__ import annotations

import pytest

from agents.runtime.httpserver import BadRequest, Response, parse_head, render_head


def head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_prometheus_scrape_parses() -> None:
    request = parse_head(head(
        "GET /metrics?name[]=srs_up HTTP/1.1", "Host: 10.0.0.7:9973",
        "User-Agent: Prometheus/2.53.0", "Accept-Encoding: gzip",
        "X-Prometheus-Scrape-Timeout-Seconds: 10"))
    assert (request.method, request.path, request.query) == ("GET", "/metrics", "name[]=srs_up")
    assert request.version == (1, 1)
    assert request.headers["user-agent"] == "Prometheus/2.53.0"
    assert request.keep_alive and not request.has_body


@pytest.mark.parametrize(("version", "connection", "keep"), [
    ("HTTP/1.1", None, True),
    ("HTTP/1.1", "close", False),
    ("HTTP/1.1", "TE, Close", False),
    ("HTTP/1.0", None, False),
    ("HTTP/1.0", "Keep-Alive", True),
])
def test_keep_alive_follows_the_version_and_connection(version: str, connection: str | None,
                                                       keep: bool) -> None:
    lines = [f"GET /healthz {version}", "Host: x"]
    if connection is not None:
        lines.append(f"Connection: {connection}")
    assert parse_head(head(*lines)).keep_alive is keep


@pytest.mark.parametrize("lines", [
    ("POST /metrics HTTP/1.1", "Host: x", "Content-Length: 5"),
    ("POST /metrics HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"),
])
def test_a_body_is_seen(lines: tuple[str, ...]) -> None:
    assert parse_head(head(*lines)).has_body


def test_repeated_headers_are_joined_as_rfc_9110_says() -> None:
    request = parse_head(head("GET / HTTP/1.1", "Host: x", "Accept: a", "Accept:  b "))
    assert request.headers["accept"] == "a, b"


@pytest.mark.parametrize(("lines", "status", "says"), [
    (("GET /metrics",), 400, "request line"),
    (("GET  /metrics HTTP/1.1", "Host: x"), 400, "request line"),
    (("G(T /metrics HTTP/1.1", "Host: x"), 400, "method"),
    (("GET /metrics HTTP/2.0", "Host: x"), 505, "HTTP/1.0 and HTTP/1.1"),
    (("GET /metrics SRS/1.1", "Host: x"), 400, "HTTP version"),
    (("GET http://x/metrics HTTP/1.1", "Host: x"), 400, "path"),
    (("GET /metrics HTTP/1.1",), 400, "without Host"),
    (("GET /metrics HTTP/1.1", "Host: x", "Host: y"), 400, "twice"),
    (("GET /metrics HTTP/1.1", "Host: x", "Content-Length: 1", "Content-Length: 1"), 400,
     "twice"),
    (("GET /metrics HTTP/1.1", "Host: x", "Content-Length: -1"), 400, "not a number"),
    (("GET /metrics HTTP/1.1", "Host: x", "Bad Name: 1"), 400, "malformed"),
    (("GET /metrics HTTP/1.1", "Host: x", "Name : 1"), 400, "malformed"),
    (("GET /metrics HTTP/1.1", "Host: x", "X-A: 1", " folded"), 400, "malformed"),
    (("GET /metrics HTTP/1.1", "Host: x", "no colon"), 400, "malformed"),
])
def test_bad_heads_are_refused_with_the_reason(lines: tuple[str, ...], status: int,
                                               says: str) -> None:
    with pytest.raises(BadRequest, match=says) as err:
        parse_head(head(*lines))
    assert err.value.status == status


def test_a_head_that_is_not_ascii_is_refused() -> None:
    with pytest.raises(BadRequest, match="ASCII"):
        parse_head("GET /m\u00e9trics HTTP/1.1\r\nHost: x\r\n\r\n".encode())


def test_an_empty_head_is_refused() -> None:
    with pytest.raises(BadRequest, match="empty"):
        parse_head(b"\r\n\r\n")


def test_the_response_head_carries_length_connection_and_extra_headers() -> None:
    response = Response(405, b"only GET\n", headers=(("Allow", "GET, HEAD"),))
    assert render_head(response, keep_alive=False) == (
        b"HTTP/1.1 405 Method Not Allowed\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 9\r\n"
        b"Connection: close\r\nAllow: GET, HEAD\r\n\r\n")
    assert b"Connection: keep-alive\r\n" in render_head(response, keep_alive=True)
