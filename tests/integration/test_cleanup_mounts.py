"""Mount points inside the root, and the disk watermark on a small real filesystem.

Each test runs a script in a private mount namespace (`unshare --mount`, as root; or with
a user namespace when not root) that mounts a tmpfs and a bind mount, runs the real
`srs-agent cleanup --once` and prints what it saw. The mounts vanish with the namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

AGENT = str(Path(sys.executable).with_name("srs-agent"))
DAY = 86400.0

# Runs inside the namespace: argv = workdir, then `srs-agent cleanup` arguments.
# {"mounts": [[kind, source, target, options]...], "files": [[path, age_days, size]...]}
# comes on stdin; the files are made after mounting, so they land on the mounts.
_SCRIPT = r"""
import json, os, subprocess, sys, time
spec = json.load(sys.stdin)
now = time.time()
for kind, source, target, options in spec["mounts"]:
    os.makedirs(target, exist_ok=True)
    args = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", target] if kind == "tmpfs" \
        else ["mount", "--bind", source, target]
    subprocess.run(args, check=True)
for path, age, size in spec["files"]:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"G" * size)
    os.utime(path, (now - age * 86400, now - age * 86400))
for path, age in spec.get("dirs", []):
    os.utime(path, (now - age * 86400, now - age * 86400))
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
left = sorted(os.path.join(d, n) for d, dirs, files in os.walk(spec["walk"]) for n in dirs + files)
print(json.dumps({"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr,
                  "left": left}))
"""


def in_namespace(spec: dict[str, Any], *args: str) -> dict[str, Any]:
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed for the mount tests"
    flags = ["--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        flags = ["--user", "--map-root-user", *flags]
    probe = subprocess.run([unshare, *flags, "true"], capture_output=True, text=True,
                           check=False)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.strip()}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRS_AGENT_")}
    proc = subprocess.run([unshare, *flags, sys.executable, "-c", _SCRIPT, AGENT, "cleanup",
                           "--once", *args], input=json.dumps(spec), capture_output=True,
                          text=True, timeout=60, env=env, check=True)
    result: dict[str, Any] = json.loads(proc.stdout)
    result["report"] = next(json.loads(line)["report"] for line in result["stderr"].splitlines()
                            if '"report"' in line)
    return result


def age(path: Path, days: float) -> None:
    when = time.time() - days * DAY
    os.utime(path, (when, when))


def test_other_filesystems_and_bind_mounts_are_not_entered(tmp_path: Path) -> None:
    root = tmp_path / "html"
    outside = tmp_path / "outside"  # same filesystem as the root, bind-mounted into it
    (outside / "live").mkdir(parents=True)
    precious = outside / "live" / "s9-1.ts"
    precious.write_bytes(b"x")
    age(precious, 30)
    (root / "live").mkdir(parents=True)
    spec = {
        "mounts": [["tmpfs", "", str(root / "live" / "tmpfs"), "size=1m"],
                   ["bind", str(outside), str(root / "live" / "bind"), ""]],
        "files": [[str(root / "live" / "s1-1.ts"), 9, 10],
                  [str(root / "live" / "tmpfs" / "s2-1.ts"), 9, 10],
                  [str(root / "live" / "tmpfs" / "deep" / "s3-1.ts"), 9, 10]],
        "dirs": [[str(root / "live"), 9]],
        "walk": str(root),
    }
    result = in_namespace(spec, "--roots", str(root), "--patterns", "*")
    assert result["rc"] == 0, result["stderr"]
    report = result["report"]
    assert report["kept"]["other_fs"] == 2
    assert report["files_deleted"] == 1
    left = {os.path.relpath(p, root) for p in result["left"]}
    assert left == {"live", "live/tmpfs", "live/tmpfs/s2-1.ts", "live/tmpfs/deep",
                    "live/tmpfs/deep/s3-1.ts", "live/bind", "live/bind/live",
                    "live/bind/live/s9-1.ts"}
    assert precious.exists()  # the bind mount's source, seen after the namespace is gone
    reasons = {json.loads(line).get("reason") for line in result["stderr"].splitlines()
               if "mount point" in line}
    assert reasons == {"another filesystem", "a bind mount"}


def _volume(small: Path) -> tuple[list[list[object]], list[str]]:
    """Files for a 2 MiB tmpfs: 1.75 MiB used, of which one old segment, a protected
    recording, and 12 young segments one hour apart; returns (files, young oldest first)."""
    files: list[list[object]] = [[str(small / "live" / "s0-1.ts"), 9, 256 * 1024],
                                 [str(small / "live" / "s0.1795718081416.flv"), 0.01,
                                  256 * 1024]]
    young = []
    for i in range(12):
        path = small / "live" / f"s1-{i}.ts"
        files.append([str(path), (24 - i) / 24, 100 * 1024])
        young.append(str(path))
    return files, young


def test_the_watermark_deletes_the_oldest_until_under_the_mark(tmp_path: Path) -> None:
    small = tmp_path / "small"
    files, young = _volume(small)
    spec = {"mounts": [["tmpfs", "", str(small), "size=2m"]], "files": files,
            "walk": str(small)}
    result = in_namespace(spec, "--roots", str(small), "--max-usage", "50%",
                          "--concurrency", "4")
    assert result["rc"] == 0, result["stderr"]
    report = result["report"]
    (mark,) = report["watermark"]
    assert mark["met"] is True
    assert mark["usage_before_percent"] > 50 > mark["usage_after_percent"]
    left = set(result["left"])
    assert str(small / "live" / "s0-1.ts") not in left  # the age rule took it first
    assert str(small / "live" / "s0.1795718081416.flv") in left  # protected
    kept_young = [p for p in young if p in left]
    assert kept_young == young[len(young) - len(kept_young):], "not the oldest first"
    assert 0 < len(kept_young) < len(young)
    assert mark["files_deleted"] == len(young) - len(kept_young)
    assert report["files_deleted"] == 1 + mark["files_deleted"]


def test_a_mark_that_cannot_be_met_is_an_error(tmp_path: Path) -> None:
    small = tmp_path / "small"
    spec = {"mounts": [["tmpfs", "", str(small), "size=1m"]],
            "files": [[str(small / "live" / "rec.1795.flv"), 9, 800 * 1024],
                      [str(small / "live" / "s1-1.ts"), 0.01, 4096]],
            "walk": str(small)}
    result = in_namespace(spec, "--roots", str(small), "--max-usage", "50%")
    assert result["rc"] == 1
    report = result["report"]
    assert report["errors"] == {"watermark_not_met": 1}
    assert report["watermark"][0]["met"] is False
    assert str(small / "live" / "rec.1795.flv") in result["left"]
    assert str(small / "live" / "s1-1.ts") not in result["left"]
