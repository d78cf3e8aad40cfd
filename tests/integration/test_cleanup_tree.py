"""srs-agent cleanup on real trees (disk and tmpfs) with controlled mtimes.

Most tests run the real `srs-agent cleanup --once` process; the ones that need a
change between the scan and the unlink drive the scanner and the remover in-process,
on real files, and make the change between the two.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.cleanup.command import sleep_until
from agents.cleanup.policy import Policy, join
from agents.cleanup.scan import (
    Budget,
    DirDone,
    DirNode,
    ErrorLog,
    Files,
    Item,
    Pool,
    Remover,
    Tally,
    Walker,
    WorkerFailed,
    drive,
)

pytestmark = pytest.mark.integration

AGENT = str(Path(sys.executable).with_name("srs-agent"))
DAY = 86400.0


class Tree:
    """Builds a tree under `root` with mtimes relative to now."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.now = time.time()
        root.mkdir(parents=True, exist_ok=True)

    def file(self, rel: str, age_days: float, data: bytes = b"x" * 100) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.age(rel, age_days)
        return path

    def dir(self, rel: str, age_days: float) -> Path:
        path = self.root / rel
        path.mkdir(parents=True, exist_ok=True)
        self.age(rel, age_days)
        return path

    def age(self, rel: str, age_days: float) -> None:
        when = self.now - age_days * DAY
        os.utime(self.root / rel, (when, when), follow_symlinks=False)

    def listing(self) -> set[str]:
        found: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            for name in dirnames + filenames:
                found.add(os.path.normpath(os.path.join(rel, name)))
        return found


def run_cleanup(*args: str, prefix: tuple[str, ...] = (),
                timeout: float = 30) -> tuple[int, str, dict[str, Any]]:
    """Run `srs-agent cleanup --once ...`; (exit code, stdout, the report of the run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRS_AGENT_")}
    proc = subprocess.run([*prefix, AGENT, "cleanup", "--once", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, check=False)
    report: dict[str, Any] = {}
    for line in proc.stderr.splitlines():
        doc = json.loads(line)
        if "report" in doc:
            report = doc["report"]
    assert report or proc.returncode == 2, f"no report in:\n{proc.stderr}"
    return proc.returncode, proc.stdout, report


def _tmpfs_dir() -> str | None:
    with open("/proc/mounts", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if parts[1] == "/dev/shm" and parts[2] == "tmpfs" and os.access("/dev/shm", os.W_OK):
                return "/dev/shm"
    return None


@pytest.fixture(params=["disk", "tmpfs"])
def base(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """An empty directory on the test's disk, or on a tmpfs."""
    if request.param == "disk":
        yield tmp_path
        return
    shm = _tmpfs_dir()
    if shm is None:
        pytest.skip("no writable tmpfs at /dev/shm on this machine")
    path = Path(tempfile.mkdtemp(prefix="cleanup-test-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def srs_volume(tree: Tree) -> tuple[set[str], set[str]]:
    """An html volume as SRS 6.0.155 leaves it (FACTS §8), plus the default html.

    Returns (what must go, what must stay).
    """
    go = {
        # HLS left after unpublish and a crash, DVR cut off, an unfinished MP4 DVR.
        "live/s2-29.ts", "live/s2-32.ts", "live/s2.m3u8", "live/s1-44.ts.tmp",
        "live/s1.m3u8.temp", "live/s1.1795718081416.flv.tmp", "game/room/m.1795.mp4.tmp",
    }
    for rel in go:
        tree.file(rel, 5)
    stay = {
        "live/s1-45.ts", "live/s1.m3u8",  # young: today's live window
        "live/s2.1795718081418.flv", "game/room/m.1795.mp4",  # finished DVR
        "live/livestream.html", "live/notes.txt",  # not matching
        "index.html", "favicon.ico", ".srs-agents-html.json",
        "console/js/app.js", "players/crossdomain.xml", "players/srs_player.html",
        "demos/css/style.css",
    }
    for rel in stay:
        tree.file(rel, 0.01 if rel.startswith("live/s1") else 30)
    # Old empty directories go bottom-up; a young empty one stays; the protected ones stay.
    tree.dir("old/a/b", 10)
    go |= {"old", "old/a", "old/a/b"}
    tree.dir("fresh", 0.1)
    stay |= {"fresh", "live", "game", "game/room", "console", "console/js", "players",
             "demos", "demos/css"}
    for rel in ("old/a", "old", "live", "game/room", "game", "console/js", "console",
                "players", "demos/css", "demos"):
        tree.age(rel, 10)
    return go, stay


@pytest.mark.parametrize("concurrency", ["1", "8"])
def test_the_guides_patterns_on_an_srs_volume(base: Path, concurrency: str) -> None:
    tree = Tree(base / "html")
    go, stay = srs_volume(tree)
    rc, out, report = run_cleanup("--roots", str(tree.root), "--concurrency", concurrency)
    assert rc == 0, report
    left = tree.listing()
    assert not (go & left), f"not deleted: {sorted(go & left)}"
    assert stay <= left, f"deleted by mistake: {sorted(stay - left)}"
    assert tree.root.is_dir()
    assert report["files_deleted"] == 7
    assert report["bytes_freed"] == 700
    assert report["dirs_removed"] == 3
    assert report["errors"] == {}
    assert report["kept"]["young"] == 2
    assert out.startswith("cleanup ok: deleted 7 files (700 B) and 3 empty directories")


def test_an_emptied_root_is_kept_and_an_old_empty_tree_goes(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "html")
    tree.file("live/a/s-1.ts", 9)
    tree.age("live/a", 9)
    tree.age("live", 9)
    tree.age(".", 9)
    rc, _, report = run_cleanup("--roots", str(tree.root))
    assert rc == 0
    assert tree.listing() == set()
    assert tree.root.is_dir()
    assert report["dirs_removed"] == 2


def test_protected_files_survive_a_catch_all_pattern(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "html")
    keep = {"index.html", "favicon.ico", ".srs-agents-html.json", "console/index.html",
            "players/js/srs.js", "demos/img/a.png", "live/s1.1795718081416.flv",
            "live/s1.1795718081416.mp4", "archive/2025/s9-1.ts", "live/vip-1.ts"}
    for rel in keep:
        tree.file(rel, 100)
    tree.file("live/s1-3.ts", 100)
    tree.file("live/other.txt", 100)
    rc, _, report = run_cleanup("--roots", str(tree.root), "--patterns", "*",
                                "--protect", "archive/*,live/vip-*")
    assert rc == 0
    left = tree.listing()
    assert keep <= left
    assert "live/s1-3.ts" not in left and "live/other.txt" not in left
    assert report["files_deleted"] == 2


def test_symlinks_are_neither_followed_nor_deleted(base: Path) -> None:
    outside = Tree(base / "outside")
    target = outside.file("precious.ts", 50)
    outside.file("dir/also-precious.ts", 50)
    tree = Tree(base / "html")
    tree.file("live/s1-1.ts", 50)
    (tree.root / "live" / "evil.ts").symlink_to(target)
    (tree.root / "live" / "evil-dir").symlink_to(outside.root / "dir")
    (tree.root / "live" / "dangling.ts").symlink_to(base / "nowhere.ts")
    for name in ("evil.ts", "evil-dir", "dangling.ts"):
        tree.age(f"live/{name}", 50)
    rc, _, report = run_cleanup("--roots", str(tree.root), "--patterns", "*")
    assert rc == 0
    assert outside.listing() == {"precious.ts", "dir", "dir/also-precious.ts"}
    assert target.read_bytes() == b"x" * 100
    assert tree.listing() == {"live", "live/evil.ts", "live/evil-dir", "live/dangling.ts"}
    assert report["kept"]["symlink"] == 3
    assert report["files_deleted"] == 1


def test_unreadable_and_unwritable_directories_are_counted_and_the_run_goes_on(
        tmp_path: Path) -> None:
    tree = Tree(tmp_path / "html")
    tree.file("locked/s1-1.ts", 9)
    tree.file("readonly/s2-1.ts", 9)
    tree.file("live/s3-1.ts", 9)
    tree.file("zzz/s4-1.ts", 9)
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        # Root passes every permission check: run the cleaner as root without the
        # capabilities that override file permissions.
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to drop root's DAC override"
        prefix = (setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--")
    (tree.root / "locked").chmod(0)
    (tree.root / "readonly").chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        rc, out, report = run_cleanup("--roots", str(tree.root), prefix=prefix)
    finally:
        (tree.root / "locked").chmod(0o755)
        (tree.root / "readonly").chmod(0o755)
    assert rc == 1
    assert report["errors"] == {"permission": 2}
    assert report["files_deleted"] == 2
    assert tree.listing() == {"locked", "locked/s1-1.ts", "readonly", "readonly/s2-1.ts",
                              "live", "zzz"}  # live/ and zzz/ are young: emptied, kept
    assert "cleanup FAILED" in out and "permission=2" in out


def test_dry_run_deletes_nothing_and_lists_what_would_go(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "html")
    go, _ = srs_volume(tree)
    before = {rel: os.lstat(tree.root / rel).st_mtime for rel in tree.listing()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRS_AGENT_")}
    proc = subprocess.run([AGENT, "cleanup", "--once", "--dry-run", "--roots", str(tree.root)],
                          capture_output=True, text=True, timeout=30, env=env, check=False)
    assert proc.returncode == 0
    assert {rel: os.lstat(tree.root / rel).st_mtime for rel in tree.listing()} == before
    listed = {os.path.relpath(json.loads(line)["path"], tree.root)
              for line in proc.stderr.splitlines() if '"path"' in line}
    assert listed == go
    assert proc.stdout.startswith("cleanup ok: would delete 7 files (700 B) and 3 empty")


@pytest.mark.parametrize("concurrency", ["1", "8"])
def test_max_deletions_caps_a_run(tmp_path: Path, concurrency: str) -> None:
    tree = Tree(tmp_path / "html")
    for app in range(4):
        for i in range(50):
            tree.file(f"app{app}/s-{i}.ts", 9)
    rc, out, report = run_cleanup("--roots", str(tree.root), "--max-deletions", "37",
                                  "--concurrency", concurrency)
    assert rc == 1
    assert report["files_deleted"] == 37
    assert report["errors"] == {"max_deletions": 1}
    assert len([p for p in tree.listing() if p.endswith(".ts")]) == 200 - 37
    assert "max_deletions=1" in out


def test_several_roots_and_a_missing_one(tmp_path: Path) -> None:
    a, b = Tree(tmp_path / "a"), Tree(tmp_path / "b")
    a.file("live/s-1.ts", 9)
    b.file("live/s-1.ts", 9)
    rc, _, report = run_cleanup("--roots", f"{a.root},{tmp_path / 'missing'},{b.root}")
    assert rc == 1
    assert report["errors"] == {"root_missing": 1}
    assert report["files_deleted"] == 2


@pytest.mark.parametrize("args,flag", [
    ([], "--once and --schedule"),
    (["--once", "--schedule", "15 1 * * *"], "--once and --schedule"),
    (["--schedule", "15 1 * * * *"], "--schedule"),
    (["--schedule", "15 1 * * *", "--timezone", "Beijing"], "--timezone"),
    (["--once", "--patterns", ""], "--patterns"),
    (["--once", "--older-than", "3 days"], "--older-than"),
])
def test_config_errors_exit_2_naming_the_flag(args: list[str], flag: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRS_AGENT_")}
    proc = subprocess.run([AGENT, "cleanup", *args], capture_output=True, text=True,
                          timeout=30, env=env, check=False)
    assert proc.returncode == 2
    assert flag in proc.stderr


def test_schedule_mode_serves_ops_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRS_AGENT_")}
    proc = subprocess.Popen(
        [AGENT, "cleanup", "--schedule", "15 1 * * *", "--timezone", "Asia/Shanghai",
         "--roots", str(tmp_path), "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stderr is not None
        lines: list[dict[str, Any]] = []
        port = 0
        while not (port and any(d["msg"].startswith("next cleanup run") for d in lines)):
            line = proc.stderr.readline()
            assert line, "srs-agent ended early"
            lines.append(json.loads(line))
            if lines[-1]["msg"] == "ops server listening":
                port = int(lines[-1]["address"].rsplit(":", 1)[1])
        nxt = next(d for d in lines if d["msg"].startswith("next cleanup run"))
        assert nxt["next_run"].endswith("T01:15:00+08:00")
        assert nxt["timezone"] == "Asia/Shanghai"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert json.load(resp)["ok"] is True
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        assert "srs_cleanup_files_deleted_total 0.0" in body
        assert "srs_cleanup_run_duration_seconds" in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------------
# In-process: changes between the scan and the unlink
# ---------------------------------------------------------------------------


def run_pass(root: Path, observe: Callable[[Item], None] | None = None, *,
             concurrency: int = 1, policy: Policy | None = None,
             pool: type[Pool] | None = None) -> Tally:
    """One age-based pass over `root`, one file per batch; `observe` sees each batch
    right before its unlinks and each directory when its listing ends (before it is
    finished; with more than one thread maybe well before). `pool` may force an
    interleaving."""
    policy = policy or Policy()
    abort, lock, errors = threading.Event(), threading.Lock(), ErrorLog()
    scan_tally, remove_tally = Tally(), Tally()
    walker = Walker(str(root), policy, abort=abort, tally=scan_tally, errors=errors, lock=lock,
                    batch_size=1)
    node = walker.open_root()
    remover = Remover(str(root), policy, policy.cutoff(time.time()), dry_run=False,
                      budget=Budget(0), abort=abort, tally=remove_tally, errors=errors,
                      lock=lock)
    if pool is None:
        drive(walker, node, remover, concurrency, observe)
    else:
        pool(walker, remover, concurrency, observe).run(node)
    scan_tally.merge(remove_tally)
    return scan_tally


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_file_replaced_between_scan_and_delete_is_kept(tmp_path: Path,
                                                         concurrency: int) -> None:
    tree = Tree(tmp_path / "html")
    tree.file("live/s1-1.ts", 9)
    tree.file("live/s1-2.ts", 9)
    tree.file("live/s1-3.ts", 9)
    tree.age("live", 9)

    def meddle(item: Item) -> None:
        if isinstance(item, Files):
            for name, _ in item.names:
                if name == "s1-2.ts":
                    # SRS's way: write a new file, rename it over the old one (a new
                    # inode), here with an old mtime so that only identity can tell.
                    tree.file("live/s1-2.ts.new", 9, b"new segment")
                    os.replace(tree.root / "live/s1-2.ts.new", tree.root / "live/s1-2.ts")
                if name == "s1-3.ts":
                    (tree.root / "live/s1-3.ts").unlink()  # vanished: fine

    tally = run_pass(tree.root, meddle, concurrency=concurrency)
    assert tree.listing() == {"live", "live/s1-2.ts"}
    assert (tree.root / "live/s1-2.ts").read_bytes() == b"new segment"
    assert tally.files_deleted == 1
    assert tally.kept["changed"] == 1
    assert tally.vanished == 1
    assert not tally.errors


def test_a_file_rewritten_after_the_scan_is_kept_as_young(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "html")
    tree.file("live/s1.m3u8", 9)

    def rewrite(item: Item) -> None:
        if isinstance(item, Files):
            (tree.root / "live/s1.m3u8").write_text("#EXTM3U\n")  # mtime now

    tally = run_pass(tree.root, rewrite)
    assert "live/s1.m3u8" in tree.listing()
    assert tally.kept["young"] == 1


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_directory_that_gets_a_file_during_the_run_is_kept(tmp_path: Path,
                                                             concurrency: int) -> None:
    tree = Tree(tmp_path / "html")
    tree.file("live/old/s1-1.ts", 9)
    tree.file("live/gone/s2-1.ts", 9)
    for rel in ("live/old", "live/gone", "live"):
        tree.age(rel, 9)

    def publish(item: Item) -> None:
        if isinstance(item, DirDone) and item.dir.rel == "live/old":
            (tree.root / "live/old/s1-2.ts.tmp").write_bytes(b"new")  # a stream restarts

    tally = run_pass(tree.root, publish, concurrency=concurrency)
    assert tree.listing() == {"live", "live/old", "live/old/s1-2.ts.tmp"}
    assert tally.files_deleted == 2
    assert tally.dirs_removed == 1  # live/gone; live/old and live stay
    assert not tally.errors


def test_a_directory_swapped_for_a_symlink_is_not_followed(tmp_path: Path) -> None:
    outside = Tree(tmp_path / "outside")
    outside.file("s9-1.ts", 9)
    tree = Tree(tmp_path / "html")
    tree.file("a/s1-1.ts", 9)
    tree.file("b/s2-1.ts", 9)

    swapped: list[str] = []

    def swap(item: Item) -> None:
        if not swapped and isinstance(item, Files):
            # Whichever directory comes first, the other becomes a symlink to a tree
            # outside before the scanner opens it.
            other = "b" if item.dir.rel == "a" else "a"
            shutil.rmtree(tree.root / other)
            (tree.root / other).symlink_to(outside.root)
            swapped.append(other)

    tally = run_pass(tree.root, swap)
    assert outside.listing() == {"s9-1.ts"}
    assert tally.kept["changed"] == 1  # O_NOFOLLOW refused the symlink
    assert tally.files_deleted == 1


@pytest.mark.parametrize("forced_kind", [Files, DirNode], ids=["batch", "subdirectory"])
def test_work_on_another_thread_keeps_its_directory_open(
        tmp_path: Path, forced_kind: type[Files | DirNode]) -> None:
    # Forced onto the other thread and held there until the thread that listed live/
    # has done everything else: live/'s first batch (its lstat and unlink use live/'s
    # descriptor), or the subdirectory live/sub (its rmdir does). live/ must still be
    # open then, and go only after that work.
    tree = Tree(tmp_path / "html")
    for rel in ("live/s1-1.ts", "live/s1-2.ts", "live/sub/s2-1.ts"):
        tree.file(rel, 9)
    for rel in ("live/sub", "live"):
        tree.age(rel, 9)
    target = "live" if forced_kind is Files else "live/sub"  # a batch of live/, or live/sub
    forced: list[Files | DirNode] = []
    threads: dict[str, str] = {}

    class Forcing(Pool):
        def _hand_over(self, task: Files | DirNode) -> bool:
            rel = task.dir.rel if isinstance(task, Files) else task.rel
            if forced or not isinstance(task, forced_kind) or rel != target:
                return super()._hand_over(task)
            forced.append(task)
            self._until(lambda: self._idle > len(self._tasks), "the other thread waits")
            assert super()._hand_over(task)
            self._until(lambda: all(t is not task for t in self._tasks), "it took the task")
            return True

        def _files(self, batch: Files) -> None:
            self._hold(batch)
            super()._files(batch)

        def _list(self, walker: Walker, start: DirNode) -> None:
            self._hold(start)
            super()._list(walker, start)

        def _hold(self, task: Files | DirNode) -> None:
            if forced and task is forced[0]:
                threads["forced"] = threading.current_thread().name
                self._until(lambda: self._idle == 1 and not self._tasks,
                            "the thread that listed live/ has nothing left to do")
                assert (tree.root / "live").is_dir()

        def _until(self, condition: Callable[[], bool], what: str) -> None:
            deadline = time.monotonic() + 10
            while True:
                with self._cond:
                    if condition():
                        return
                assert time.monotonic() < deadline, f"never: {what}"
                time.sleep(0.001)

    def note(item: Item) -> None:
        if isinstance(item, DirDone):
            threads.setdefault(f"listed {item.dir.rel}", threading.current_thread().name)

    tally = run_pass(tree.root, note, concurrency=2, pool=Forcing)
    assert threads["forced"] != threads["listed live"]
    assert tree.listing() == set()
    assert tally.files_deleted == 3
    assert tally.dirs_removed == 2
    assert not tally.errors


class Boom(Exception):
    pass


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_failing_worker_ends_the_pass_and_its_directory_stays(tmp_path: Path,
                                                                concurrency: int) -> None:
    tree = Tree(tmp_path / "html")
    for app in range(8):
        for i in range(4):
            tree.file(f"app{app}/s-{i}.ts", 9)
        tree.age(f"app{app}", 9)
    failed: list[str] = []

    def fail(item: Item) -> None:
        if isinstance(item, Files) and not failed:
            failed.append(join(item.dir.rel, item.names[0][0]))
            raise Boom  # a bug in a worker, right before this batch's unlink

    outcome: list[BaseException] = []

    def run() -> None:
        try:
            run_pass(tree.root, fail, concurrency=concurrency)
        except (WorkerFailed, Boom) as exc:  # handed over to the test's thread
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the pass did not end after a worker failed"
    assert len(outcome) == 1
    if concurrency > 1:
        assert isinstance(outcome[0], WorkerFailed)
    assert isinstance(outcome[0].__cause__ if concurrency > 1 else outcome[0], Boom)
    assert failed[0] in tree.listing()  # its batch never ran: the file and its directory stay


async def test_waiting_for_the_next_run_ends_at_the_time_or_at_stop() -> None:
    stop = asyncio.Event()
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.2)
    assert await sleep_until(due, stop) is True
    assert dt.datetime.now(dt.UTC) >= due
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    asyncio.get_running_loop().call_later(0.1, stop.set)
    assert await asyncio.wait_for(sleep_until(far, stop), timeout=5) is False
