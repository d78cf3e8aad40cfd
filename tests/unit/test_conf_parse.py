"""srs.conf tokenizer and parser: the tree, positions, and SRS's syntax errors with line:col."""

from __future__ import annotations

import pytest

from agents.errors import ConfigError
from agents.srs.conf import ConfigProblem, ConfigSyntaxError, Directive, parse

EDGE = """\
listen 1935;
vhost __defaultVhost__ {
    cluster {
        mode remote;
        origin a.svc b.svc;   # two origins
    }
}
"""


def syntax_error(text: str) -> ConfigProblem:
    with pytest.raises(ConfigSyntaxError) as info:
        parse(text, "srs.conf")
    assert isinstance(info.value, ConfigError)  # exit 2 where the process cannot go on
    assert str(info.value) == str(info.value.problem)
    return info.value.problem


def test_tree_names_args_and_blocks() -> None:
    config = parse(EDGE, "edge.conf")
    assert [d.name for d in config.root] == ["listen", "vhost"]
    listen, vhost = config.root
    assert listen.args == ["1935"] and listen.children is None
    assert vhost.args == ["__defaultVhost__"] and vhost.children is not None
    origin = config.get("vhost", "cluster", "origin")
    assert origin is not None and origin.args == ["a.svc", "b.svc"]
    assert config.files == {"edge.conf": EDGE}


def test_positions_are_one_based_and_offsets_cover_the_directive() -> None:
    config = parse(EDGE, "edge.conf")
    origin = config.get("vhost", "cluster", "origin")
    assert origin is not None
    assert (origin.file, origin.line, origin.col) == ("edge.conf", 5, 9)
    assert EDGE[origin.start : origin.end] == "origin a.svc b.svc;"
    cluster = config.get("vhost", "cluster")
    assert cluster is not None
    assert EDGE[cluster.start : cluster.end].startswith("cluster {")
    assert EDGE[cluster.start : cluster.end].endswith("two origins\n    }")


def test_get_all_and_vhost_lookup() -> None:
    text = "vhost a { hls { enabled on; } ingest x {} ingest y {} }\nvhost b { }\n"
    config = parse(text, "x.conf")
    assert [v.arg0 for v in config.vhosts()] == ["a", "b"]
    b = config.find_vhost("b")
    assert b is not None and b.children == []
    assert config.find_vhost("c") is None
    a = config.find_vhost("a")
    assert a is not None
    assert [i.arg0 for i in a.all("ingest")] == ["x", "y"]
    assert a.get("dvr") is None
    hls = a.get("hls")
    assert isinstance(hls, Directive) and hls.get("enabled") is not None
    assert config.get("vhost", "hls", "enabled") is not None  # first vhost
    assert config.get("nope") is None


def test_quotes_comments_and_env_values() -> None:
    text = (
        "pid \"./a b.pid\";\n"
        "hls_path './x;y{z}';\n"
        "mount [app]/[stream].flv#frag;  # a comment ; { }\n"
        "candidate $CANDIDATE;\n"
        "candidate \"${CANDIDATE}\";\n"
        "args 'it\"s' \"it's\";\n"
    )
    root = parse(text, "q.conf").root
    assert [d.args for d in root] == [
        ["./a b.pid"],
        ["./x;y{z}"],
        ["[app]/[stream].flv#frag"],
        ["$CANDIDATE"],
        ["${CANDIDATE}"],
        ['it"s', "it's"],
    ]


def test_unquoted_dollar_brace_opens_a_block_as_in_srs() -> None:
    problem = syntax_error("rtc_server {\n    candidate ${CANDIDATE};\n}\n")
    assert (problem.line, problem.col) == (1, 1)
    assert problem.message == 'unexpected end of file, expecting "}" to close rtc_server'


def test_srs_drops_empty_quoted_words() -> None:
    root = parse('name "" a \'\' b;\n', "e.conf").root
    assert root[0].args == ["a", "b"]


def test_several_directives_on_one_line_and_empty_input() -> None:
    root = parse("daemon off; srs_log_tank console; vhost v { enabled on; }", "s.conf").root
    assert [d.name for d in root] == ["daemon", "srs_log_tank", "vhost"]
    assert parse("", "e.conf").root == []
    assert parse("# only a comment\n\n   \n", "c.conf").root == []


def test_include_stays_a_directive_without_resolution() -> None:
    root = parse("include a.conf b.conf;\n", "m.conf").root
    assert root[0].name == "include" and root[0].args == ["a.conf", "b.conf"]


# --- SRS's syntax errors, each at an exact line:col ----------------------------------------


def test_missing_semicolon_points_at_the_line_end() -> None:
    problem = syntax_error("listen 1935;\ndaemon off\nvhost v {}\n")
    assert (problem.file, problem.line, problem.col) == ("srs.conf", 2, 11)
    assert problem.message == "unexpected end of line to parse token daemon"
    assert str(problem) == "srs.conf:2:11: unexpected end of line to parse token daemon"


def test_directive_may_not_span_lines() -> None:
    problem = syntax_error("vhost v\n{\n}\n")
    assert (problem.line, problem.col) == (1, 8)
    assert problem.message == "unexpected end of line to parse token vhost"


def test_unknown_brace_at_root() -> None:
    problem = syntax_error("listen 1935;\n}\n")
    assert (problem.line, problem.col, problem.message) == (2, 1, 'unexpected "}"')


def test_unclosed_block_points_at_the_block() -> None:
    problem = syntax_error("listen 1935;\nvhost v {\n    hls {\n    }\n")
    assert (problem.line, problem.col) == (2, 1)
    assert problem.message == 'unexpected end of file, expecting "}" to close vhost'


def test_brace_after_arguments() -> None:
    problem = syntax_error("vhost v {\n    enabled on }\n")
    assert (problem.line, problem.col, problem.message) == (2, 16, "unexpected '}'")


def test_unterminated_quote() -> None:
    problem = syntax_error('listen 1935;\nhls_path "./objs;\ndaemon off;\n')
    assert (problem.line, problem.col) == (2, 18)
    assert problem.message == (
        "unexpected end of line to parse token hls_path (quote at 2:10 never closed)"
    )


def test_unterminated_quote_at_end_of_file() -> None:
    problem = syntax_error("listen 1935;\n'abc")
    assert (problem.line, problem.col) == (2, 5)
    assert problem.message == (
        'unexpected end of file, expecting ; or "}" (quote at 2:1 never closed)'
    )


def test_end_of_file_inside_a_directive() -> None:
    problem = syntax_error("listen 1935;\ndaemon off")
    assert (problem.line, problem.col) == (2, 11)
    assert problem.message == 'unexpected end of file, expecting ; or "}"'


def test_lone_semicolon_and_brace() -> None:
    problem = syntax_error("listen 1935;\n  ;\n")
    assert (problem.line, problem.col, problem.message) == (2, 3, "unexpected ';'")
    problem = syntax_error("vhost v {\n    {\n")
    assert (problem.line, problem.col, problem.message) == (2, 5, "unexpected '{'")


def test_text_right_after_a_closing_quote() -> None:
    problem = syntax_error('pid "a"b;\n')
    assert (problem.line, problem.col, problem.message) == (1, 8, "unexpected 'b'")


def test_empty_directive() -> None:
    problem = syntax_error('listen 1935;\n"";\n')
    assert (problem.line, problem.col, problem.message) == (2, 3, "empty directive")
    problem = syntax_error('listen 1935;\n"" ;\n')
    assert (problem.line, problem.col, problem.message) == (2, 4, "unexpected ';'")


def test_carriage_return_ends_a_line_like_srs() -> None:
    root = parse("listen 1935;\r\ndaemon off;\r\n", "crlf.conf").root
    assert [(d.name, d.line, d.col) for d in root] == [("listen", 1, 1), ("daemon", 2, 1)]
    problem = syntax_error("listen 1935\r\n")
    assert (problem.line, problem.col) == (1, 12)
    assert problem.message == "unexpected end of line to parse token listen"


def test_comment_only_starts_where_a_token_could() -> None:
    root = parse("a#b c; # d e;\n", "h.conf").root
    assert len(root) == 1 and root[0].name == "a#b" and root[0].args == ["c"]


def test_deep_nesting_does_not_recurse() -> None:
    depth = 5000
    text = "a {\n" * depth + "}\n" * depth
    node = parse(text, "deep.conf").root[0]
    for _ in range(depth - 1):
        assert node.children is not None
        node = node.children[0]
    assert node.children == []
