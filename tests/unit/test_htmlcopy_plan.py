"""The pure decisions of copy-html: who owns each file, what a rerun does, what is recorded."""

from __future__ import annotations

import json

import pytest

from agents.htmlcopy_plan import (
    BLOCKED,
    COPY,
    DIR,
    FILE,
    KEEP,
    MISSING,
    REMOVE,
    SYMLINK,
    UNCHANGED,
    UPDATE,
    Action,
    Kept,
    Marker,
    MarkerError,
    Record,
    SourceFile,
    TargetState,
    build_marker,
    content_source_id,
    count,
    decode_intent,
    decode_marker,
    encode_intent,
    encode_marker,
    format_plan,
    install_order,
    is_reserved,
    is_stale_intent,
    is_stale_temp,
    is_up_to_date,
    plan,
    stat_source_id,
)


def src(rel: str, sha: str, size: int = 10, mtime: int = 1000) -> SourceFile:
    return SourceFile(rel, size, mtime, 0o644, sha)


def file(sha: str, size: int = 10, mtime: int = 1000, ino: int = 1) -> TargetState:
    return TargetState(FILE, size, mtime, ino, sha)


def marker_of(files: dict[str, str], source_id: str = "id-1") -> Marker:
    return Marker(source_id, "1", True, {rel: Record(sha, 10, 1000) for rel, sha in files.items()})


def verbs(actions: list[Action]) -> dict[str, str]:
    return {a.rel: a.verb for a in actions}


def test_fresh_target_copies_everything() -> None:
    source = {"index.html": src("index.html", "a"), "js/x.js": src("js/x.js", "b")}
    target = {rel: TargetState(MISSING) for rel in source}
    actions = plan(source, None, target)
    assert verbs(actions) == {"index.html": COPY, "js/x.js": COPY}
    assert all(a.why == "new" for a in actions)


def test_same_source_again_is_all_unchanged() -> None:
    source = {"a.html": src("a.html", "a"), "b.html": src("b.html", "b")}
    target = {"a.html": file("a"), "b.html": file("b")}
    assert verbs(plan(source, marker_of({"a.html": "a", "b.html": "b"}), target)) == {
        "a.html": UNCHANGED, "b.html": UNCHANGED}


def test_upgrade_updates_and_removes_only_what_we_installed_untouched() -> None:
    old = marker_of({"same": "s", "changed": "c1", "dropped": "d", "edited": "e1",
                     "edited-dropped": "x1"})
    source = {"same": src("same", "s"), "changed": src("changed", "c2"),
              "edited": src("edited", "e2"), "added": src("added", "n")}
    target = {"same": file("s"), "changed": file("c1"), "dropped": file("d"),
              "edited": file("user"), "edited-dropped": file("user2"),
              "added": TargetState(MISSING)}
    actions = plan(source, old, target)
    assert verbs(actions) == {
        "same": UNCHANGED, "changed": UPDATE, "dropped": REMOVE, "edited": KEEP,
        "edited-dropped": KEEP, "added": COPY}
    why = {a.rel: a.why for a in actions}
    assert why["edited"] == "changed since it was installed"
    assert why["edited-dropped"].startswith("no longer in the source, but changed")


def test_a_file_that_was_there_before_us_is_kept_unless_equal() -> None:
    source = {"index.html": src("index.html", "ours"), "nginx.html": src("nginx.html", "n")}
    target = {"index.html": file("theirs"), "nginx.html": file("n")}
    actions = plan(source, None, target)
    assert verbs(actions) == {"index.html": KEEP, "nginx.html": UNCHANGED}
    assert "not installed by copy-html" in actions[0].why


def test_missing_installed_file_is_restored_and_gone_removal_is_forgotten() -> None:
    source = {"a": src("a", "a")}
    actions = plan(source, marker_of({"a": "a", "old": "o"}),
                   {"a": TargetState(MISSING), "old": TargetState(MISSING)})
    assert actions == [Action(COPY, "a", "installed before, missing")]


def test_content_a_run_that_did_not_finish_meant_to_install_is_ours() -> None:
    """A rollback after an upgrade that stopped mid-way: its files go back, none is kept."""
    old = marker_of({"a": "a1", "b": "b1", "c": "c1"})
    source = {"a": src("a", "a1"), "b": src("b", "b1"), "c": src("c", "c1")}
    target = {"a": file("a2"), "b": file("b1"), "c": file("user"), "new": file("n2"),
              "other": file("mine"), "gone": TargetState(MISSING)}
    pending = {"a": {"a2"}, "c": {"c2"}, "new": {"n2"}, "other": {"o2"}, "gone": {"g2"}}
    actions = plan(source, old, target, pending)
    assert actions == [
        Action(UPDATE, "a", "left by a run that did not finish"),
        Action(UNCHANGED, "b"),
        Action(KEEP, "c", "changed since it was installed"),
        Action(REMOVE, "new", "no longer in the source"),
    ]  # "other" holds what no run meant to write there: not even looked at
    fresh = plan({"a": src("a", "a1")}, None, {"a": file("a2")}, {"a": {"a2"}})
    assert fresh == [Action(UPDATE, "a", "left by a run that did not finish")]
    assert verbs(plan({"a": src("a", "a1")}, None, {"a": file("a2")})) == {"a": KEEP}


@pytest.mark.parametrize(("kind", "why"), [
    (DIR, "a directory is in its place"),
    (SYMLINK, "a symlink is in its place"),
    (BLOCKED, "a parent path is not a directory"),
])
def test_something_else_in_the_place_of_a_file_is_kept(kind: str, why: str) -> None:
    actions = plan({"a": src("a", "a")}, marker_of({"a": "a"}), {"a": TargetState(kind)})
    assert actions == [Action(KEEP, "a", why)]
    actions = plan({}, marker_of({"a": "a"}), {"a": TargetState(kind)})
    assert actions == [Action(KEEP, "a", "no longer in the source; " + why)]


def test_install_order_is_deepest_first_and_counts() -> None:
    actions = [Action(COPY, "index.html"), Action(UPDATE, "players/js/x.js"),
               Action(REMOVE, "old.html"), Action(COPY, "players/a.html"),
               Action(KEEP, "k"), Action(UNCHANGED, "u")]
    assert [a.rel for a in install_order(actions)] == [
        "players/js/x.js", "players/a.html", "index.html"]
    assert count(actions) == {COPY: 2, UPDATE: 1, REMOVE: 1, UNCHANGED: 1, KEEP: 1}


def test_format_plan_one_line_per_path() -> None:
    lines = format_plan([Action(COPY, "a.html", "new"), Action(UNCHANGED, "b.html"),
                         Action(KEEP, "c.html", "changed since it was installed")])
    assert lines == ["copy      a.html  (new)", "unchanged b.html",
                     "keep      c.html  (changed since it was installed)"]


def test_up_to_date_needs_same_source_complete_marker_and_same_stat() -> None:
    marker = Marker("id-1", "1", True, {"a": Record("x", 10, 1000)},
                    {"k": Kept((FILE, 5, 7), "user's")})
    current = {"a": (FILE, 10, 1000), "k": (FILE, 5, 7)}
    assert is_up_to_date(marker, "id-1", current)
    assert not is_up_to_date(None, "id-1", current)
    assert not is_up_to_date(marker, "id-2", current)
    assert not is_up_to_date(Marker("id-1", "1", False, marker.files, marker.kept), "id-1",
                             current)
    assert not is_up_to_date(marker, "id-1", {**current, "a": (FILE, 10, 1001)})
    assert not is_up_to_date(marker, "id-1", {**current, "a": (MISSING, 0, 0)})
    assert not is_up_to_date(marker, "id-1", {**current, "k": (MISSING, 0, 0)})
    assert not is_up_to_date(marker, "id-1", {**current, "k": (FILE, 6, 7)})


def test_build_marker_records_what_is_there_and_flags_foreign_content() -> None:
    source = {"a": src("a", "a"), "b": src("b", "b"), "k": src("k", "k")}
    actions = [Action(COPY, "a"), Action(UNCHANGED, "b"), Action(KEEP, "k", "user's"),
               Action(REMOVE, "gone"), Action(KEEP, "dropped", "changed")]
    after = {"a": file("a", 10, 1000), "b": file("b", 10, 5), "k": file("user", 3, 9)}
    marker = build_marker("id", "1", source, actions, after=after)
    assert marker == Marker("id", "1", True, {"a": Record("a", 10, 1000),
                                              "b": Record("b", 10, 5)},
                            {"k": Kept((FILE, 3, 9), "user's")})
    # Another writer's content landed on "a" after our rename: recorded, but not complete.
    raced = build_marker("id", "1", source, actions, after={**after, "a": file("other", 12, 3)})
    assert not raced.complete and raced.files["a"] == Record("other", 12, 3)
    for gone in (TargetState(MISSING), TargetState(DIR)):
        vanished = build_marker("id", "1", source, actions, after={**after, "a": gone})
        assert not vanished.complete and "a" not in vanished.files


def test_build_marker_takes_files_another_run_installed() -> None:
    """Kept because no marker claimed it at plan time; the marker on disk now does."""
    source = {"k": src("k", "new")}
    actions = [Action(KEEP, "k", "not installed by copy-html and differs from the source")]
    after = {"k": file("older", 3, 9)}
    others = {"k": Record("older", 3, 9)}
    marker = build_marker("id", "2", source, actions, after=after, others=others)
    assert marker.files == {"k": Record("older", 3, 9)} and marker.kept == {}
    assert not marker.complete  # the next run updates it to this source
    users = build_marker("id", "2", source, actions, after={"k": file("user", 3, 9)},
                         others=others)
    assert users.files == {} and set(users.kept) == {"k"} and users.complete
    gone = build_marker("id", "2", source, actions, after={"k": TargetState(MISSING)})
    assert gone.kept == {} and not gone.complete


def test_marker_round_trip_and_same_bytes_for_same_tree() -> None:
    marker = Marker("stat:abc", "6.0.155", True,
                    {"b": Record("2" * 64, 2, 3), "a": Record("1" * 64, 1, 2)},
                    {"k": Kept((DIR, 0, 0), "a directory is in its place")})
    data = encode_marker(marker)
    assert decode_marker(data) == marker
    reordered = Marker("stat:abc", "6.0.155", True, dict(reversed(list(marker.files.items()))),
                       marker.kept)
    assert encode_marker(reordered) == data
    assert decode_marker(encode_marker(Marker("sha256:x", None, False))).version is None


@pytest.mark.parametrize("data", [
    b"", b"not json", b"[]", b'{"format": 2}', b"[" * 100_000 + b"]" * 100_000,
    b'{"format": 1, "source": {"id": "x", "version": null}, "complete": "yes", '
    b'"files": {}, "kept": {}}',
    b'{"format": 1, "source": {"id": "x", "version": null}, "complete": true, '
    b'"files": {"a": {"sha256": "s", "size": "1", "mtime_ns": 1}}, "kept": {}}',
    b'{"format": 1, "source": {"id": "x"}, "complete": true, "files": {}, "kept": {}}',
    b'{"format": 1, "source": {"id": "x", "version": 1}, "complete": true, "files": [], '
    b'"kept": {}}',
])
def test_unreadable_marker_is_rejected(data: bytes) -> None:
    with pytest.raises(MarkerError):
        decode_marker(data)


@pytest.mark.parametrize("rel", ["../outside", "a/../../outside", "/etc/passwd", "a//b",
                                 "./a", "a/.", "", "a\0b"])
def test_paths_outside_the_target_are_rejected(rel: str) -> None:
    """The volume is writable by others: a marker or intent must not point outside it."""
    record = {"sha256": "s", "size": 1, "mtime_ns": 1}
    for field in ("files", "kept"):
        doc = {"format": 1, "source": {"id": "x", "version": None}, "complete": True,
               "files": {}, "kept": {}}
        doc[field] = {rel: {**record, "kind": "file", "why": "w"}}
        with pytest.raises(MarkerError, match="not a path inside the target"):
            decode_marker(json.dumps(doc).encode())
    with pytest.raises(MarkerError, match="not a path inside the target"):
        decode_intent(json.dumps({"format": 1, "files": {rel: "s"}}).encode())
    assert decode_intent(b'{"format": 1, "files": {"a/b..c/.d": "s"}}') == {"a/b..c/.d": "s"}


def test_source_ids() -> None:
    files = [SourceFile("a", 1, 10, 0o644, "h1"), SourceFile("b", 2, 20, 0o644, "h2")]
    assert stat_source_id("6.0.155", files) == stat_source_id("6.0.155", files[::-1])
    assert stat_source_id("6.0.155", files) != stat_source_id("6.0.156", files)
    touched = [files[0], SourceFile("b", 2, 21, 0o644, "h2")]
    assert stat_source_id("6.0.155", files) != stat_source_id("6.0.155", touched)
    assert content_source_id(files) == content_source_id(touched)  # content alone counts
    assert content_source_id(files) != content_source_id(
        [files[0], SourceFile("b", 2, 20, 0o644, "h3")])
    with pytest.raises(ValueError, match="not hashed"):
        content_source_id([SourceFile("a", 1, 1, 0o644)])


def test_temp_and_reserved_names() -> None:
    assert is_stale_temp(".srs-agents.12.ab.tmp", ctime=0, now=4000)
    assert not is_stale_temp(".srs-agents.12.ab.tmp", ctime=1000, now=4000)
    assert not is_stale_temp("s1-3.ts.tmp", ctime=0, now=4000)
    assert is_stale_intent(".srs-agents-intent.12.ab.json", ctime=0, now=4000)
    assert not is_stale_intent(".srs-agents-intent.12.ab.json", ctime=1000, now=4000)
    assert not is_stale_intent(".srs-agents-html.json", ctime=0, now=4000)
    assert is_reserved(".srs-agents-html.json") and is_reserved(".srs-agents.1.x.tmp")
    assert is_reserved(".srs-agents-intent.1.x.json")
    assert not is_reserved("index.html")


def test_intent_round_trip() -> None:
    files = {"players/a.js": "1" * 64, "index.html": "2" * 64}
    assert decode_intent(encode_intent(files)) == files
    assert encode_intent(files) == encode_intent(dict(reversed(files.items())))


@pytest.mark.parametrize("data", [
    b"", b"{", b"[]", b'{"format": 2, "files": {}}', b'{"format": 1}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"format": 1, "files": []}', b'{"format": 1, "files": {"a": 1}}',
])
def test_unreadable_intent_is_rejected(data: bytes) -> None:
    with pytest.raises(MarkerError):
        decode_intent(data)
