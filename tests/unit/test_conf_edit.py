"""`set_directive`: change or add one directive and leave every other byte alone."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.errors import ConfigError
from agents.srs.conf import Directive, parse, set_directive

FIXTURES = Path(__file__).parents[1] / "fixtures"
ALL = sorted((FIXTURES / "srs-6.0.155" / "conf").glob("*.conf")) + sorted(
    (FIXTURES / "conf").glob("*.conf")
)
EDGE = (FIXTURES / "conf" / "edge.conf").read_text()
ORIGIN = (FIXTURES / "conf" / "origin.conf").read_text()
ODD = (FIXTURES / "conf" / "odd-spacing.conf").read_text()
DEFAULT = "__defaultVhost__"


def one_line_changed(before: str, after: str) -> tuple[str, str]:
    """The single line that differs (asserts that only one does)."""
    a, b = before.split("\n"), after.split("\n")
    assert len(a) == len(b)
    diff = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    assert len(diff) == 1, diff
    return diff[0]


def inserted(before: str, after: str) -> str:
    """What was inserted (asserts `after` is `before` plus one contiguous insertion).

    Where the insertion repeats its surroundings the cut is the earliest one, so the
    result may be rotated by the whitespace it shares with them."""
    i = 0
    while i < len(before) and before[i] == after[i]:
        i += 1
    extra = len(after) - len(before)
    assert after[:i] + after[i + extra :] == before
    return after[i : i + extra]


def test_change_the_origin_list_of_the_edge() -> None:
    after = set_directive(
        EDGE,
        ("vhost", "cluster", "origin"),
        ["srs-origin-0.socs", "srs-origin-1.socs", "srs-origin-2.socs"],
        vhost=DEFAULT,
    )
    assert one_line_changed(EDGE, after) == (
        "        origin          srs-origin-0.socs srs-origin-1.socs;"
        "   # kept in sync by the controller",
        "        origin          srs-origin-0.socs srs-origin-1.socs srs-origin-2.socs;"
        "   # kept in sync by the controller",
    )
    origin = parse(after, "e.conf").get("vhost", "cluster", "origin")
    assert origin is not None and origin.args[-1] == "srs-origin-2.socs"


def test_insert_missing_coworkers_like_its_siblings() -> None:
    after = set_directive(
        ORIGIN, ("vhost", "cluster", "coworkers"), ["srs-origin-0.socs", "srs-origin-1.socs"]
    )
    assert after == ORIGIN.replace(
        "origin_cluster  on;\n",
        "origin_cluster  on;\n        coworkers       srs-origin-0.socs srs-origin-1.socs;\n",
    )


def test_same_value_keeps_the_text_as_is() -> None:
    assert set_directive(ODD, ("vhost", "hls", "hls_path"), ["./objs/nginx/html"]) == ODD
    assert set_directive(EDGE, ("listen",), ["1935"]) is EDGE


def test_comments_tabs_and_odd_spacing_survive() -> None:
    after = set_directive(ODD, ("vhost", "hls", "enabled"), ["off"], vhost=DEFAULT)
    assert one_line_changed(ODD, after) == (
        "\tenabled on;\t  # tab, then spaces",
        "\tenabled off;\t  # tab, then spaces",
    )
    after = set_directive(ODD, ("listen",), ["1935"])
    assert one_line_changed(ODD, after) == (
        "listen\t1935 [::]:1936;\t# RTMP, v4 and v6",
        "listen\t1935;\t# RTMP, v4 and v6",
    )


def test_values_that_need_quotes() -> None:
    after = set_directive(ODD, ("pid",), ["./objs/my srs.pid"])
    assert one_line_changed(ODD, after)[1] == 'pid "./objs/my srs.pid";'
    after = set_directive(ODD, ("pid",), ['say "hi"; {now}'])
    assert one_line_changed(ODD, after)[1] == "pid 'say \"hi\"; {now}';"
    after = set_directive(ODD, ("vhost", "hls", "hls_m3u8_file"), ["#x", "}y", "a#b"])
    assert one_line_changed(ODD, after)[1] == "    hls_m3u8_file \"#x\" \"}y\" a#b;"
    for bad in ([""], ["a\nb"], ["it's \"both\""]):
        with pytest.raises(ConfigError, match="cannot write"):
            set_directive(ODD, ("pid",), bad)


def test_pick_the_vhost_by_name() -> None:
    after = set_directive(ODD, ("vhost", "min_latency"), ["off"], vhost="second.example")
    assert one_line_changed(ODD, after) == ("  min_latency on;", "  min_latency off;")
    after = set_directive(ODD, ("vhost", "tcp_nodelay"), ["on"], vhost="second.example")
    assert after == ODD.replace("  min_latency on;\n", "  min_latency on;\n  tcp_nodelay on;\n")


def test_insert_into_one_line_and_empty_blocks() -> None:
    after = set_directive(ODD, ("vhost", "cluster", "coworkers"), ["x:1985"])
    assert one_line_changed(ODD, after) == (
        "  cluster { mode remote; origin a.svc b.svc; }",
        "  cluster { mode remote; origin a.svc b.svc; coworkers x:1985; }",
    )
    after = set_directive(ODD, ("vhost", "refer", "all"), ["a.com"])
    assert one_line_changed(ODD, after) == ("  refer {}", "  refer { all a.com; }")
    text = "listen 1935;\nvhost v {\n  hls {\n  }\n}\nvhost w {\n}\n"
    after = set_directive(text, ("vhost", "hls", "enabled"), ["on"], vhost="v")
    assert after == text.replace("  hls {\n", "  hls {\n    enabled on;\n")  # the file's unit
    after = set_directive(text, ("vhost", "enabled"), ["off"], vhost="w")
    assert after == text.replace("vhost w {\n", "vhost w {\n  enabled off;\n")


def test_insert_at_the_root() -> None:
    assert set_directive("listen 1935;", ("daemon",), ["off"]) == "listen 1935;\ndaemon off;"
    assert set_directive("", ("listen",), ["1935"]) == "listen 1935;\n"
    text = "# nothing yet\n"
    assert set_directive(text, ("listen",), ["1935"]) == "# nothing yet\nlisten 1935;\n"
    after = set_directive(EDGE, ("pid",), ["./objs/edge.pid"])
    assert after == EDGE + "pid                 ./objs/edge.pid;\n"  # lined up with `daemon`


def test_no_args_and_removing_args() -> None:
    text = "listen 1935;\nvhost v { enabled; }\n"
    after = set_directive(text, ("vhost", "enabled"), ["on"])
    assert after == "listen 1935;\nvhost v { enabled on; }\n"
    assert set_directive(after, ("vhost", "enabled"), []) == text


def test_crlf_files_get_crlf_lines() -> None:
    text = ORIGIN.replace("\n", "\r\n")
    after = set_directive(text, ("vhost", "cluster", "coworkers"), ["a"])
    assert after == text.replace(
        "origin_cluster  on;\r\n", "origin_cluster  on;\r\n        coworkers       a;\r\n"
    )


def test_paths_that_do_not_exist_or_are_blocks() -> None:
    with pytest.raises(ConfigError, match=r"no block vhost\.dvr in the config"):
        set_directive(EDGE, ("vhost", "dvr", "enabled"), ["on"])
    with pytest.raises(ConfigError, match="no block vhost nope in the config"):
        set_directive(EDGE, ("vhost", "cluster", "origin"), ["a"], vhost="nope")
    with pytest.raises(ConfigError, match="is a block"):
        set_directive(EDGE, ("vhost", "cluster"), ["a"])
    with pytest.raises(ConfigError, match="listen is not a block"):
        set_directive(EDGE, ("listen", "x"), ["a"])
    with pytest.raises(ConfigError, match="path starts with 'listen'"):
        set_directive(EDGE, ("listen",), ["a"], vhost=DEFAULT)
    with pytest.raises(ConfigError, match="not a directive name"):
        set_directive(EDGE, ("two words",), ["a"])
    with pytest.raises(ConfigError):  # the text itself must parse
        set_directive("listen 1935\n", ("daemon",), ["off"])


# --- properties, over every fixture, with a fixed seed ------------------------------------

VALUES = ["on", "off", "0", "1935", "a b", "x;y", "{z}", "#c", "'q'", '"d"', "$ENV", "é", "a" * 50]


def leaves(nodes: list[Directive], path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths of first-match leaf directives (what set_directive addresses)."""
    seen: set[str] = set()
    for d in nodes:
        if d.name in seen or d.name == "vhost":
            continue
        seen.add(d.name)
        if d.children is None:
            yield (*path, d.name)
        else:
            yield from leaves(d.children, (*path, d.name))


def blocks(nodes: list[Directive], path: tuple[str, ...] = ()) -> Iterator[Directive]:
    for d in nodes:
        if d.children is not None and d.name != "vhost":
            yield d
            yield from blocks(d.children, (*path, d.name))


def shape(nodes: list[Directive]) -> list[object]:
    return [(d.name, d.args, None if d.children is None else shape(d.children)) for d in nodes]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_random_changes_touch_only_their_directive(path: Path) -> None:
    rng = random.Random(path.name)
    text = path.read_text()
    config = parse(text, path.name)
    targets: list[tuple[tuple[str, ...], str | None, Directive]] = []
    for p in leaves(config.root):
        node = config.get(*p)
        assert node is not None
        targets.append((p, None, node))
    for vhost in config.vhosts():
        if config.find_vhost(vhost.arg0) is not vhost:
            continue  # a repeated name: set_directive addresses the first
        for p in leaves(vhost.children or []):
            node = vhost
            for name in p:
                found = node.get(name)
                assert found is not None
                node = found
            targets.append((("vhost", *p), vhost.arg0, node))
    assert targets
    for _ in range(40):
        target, vhost_name, node = rng.choice(targets)
        args = rng.sample(VALUES, rng.randrange(0, 4))
        after = set_directive(text, target, args, vhost=vhost_name)
        # Bytes before and after the directive are untouched...
        assert after[: node.start] == text[: node.start]
        assert after[len(after) - (len(text) - node.end) :] == text[node.end :]
        # ...and the tree differs in that directive's args alone.
        changed = parse(after, path.name)
        got: Directive | None = changed.find_vhost(vhost_name) if vhost_name else None
        for name in target[1:] if vhost_name else target:
            got = got.get(name) if got is not None else changed.get(name)
        assert got is not None and got.args == args
        got.args = list(node.args)
        assert shape(changed.root) == shape(config.root)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_random_inserts_only_add(path: Path) -> None:
    rng = random.Random(path.name)
    text = path.read_text()
    config = parse(text, path.name)
    for vhost in config.vhosts()[:1]:
        for block in [vhost, *blocks(vhost.children or [])]:
            route = ("vhost",) if block is vhost else ("vhost", block.name)
            if block is not vhost and vhost.get(block.name) is not block:
                continue
            args = rng.sample(VALUES, rng.randrange(0, 3))
            after = set_directive(text, (*route, "brand_new"), args, vhost=vhost.arg0)
            added = inserted(text, after)
            assert added.strip().startswith("brand_new")
            assert not added.strip().startswith("brand_new;") or not args
            got = parse(after, path.name).find_vhost(vhost.arg0)
            assert got is not None
            new = got.get("brand_new") if block is vhost else got.get(block.name)
            if block is not vhost:
                assert new is not None
                new = new.get("brand_new")
            assert new is not None and new.args == args
