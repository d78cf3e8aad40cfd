"""README stays true: its configuration reference is the one the settings render."""

from __future__ import annotations

from pathlib import Path

from agents.cli import ENTRYPOINTS
from agents.settings import reference_markdown

ROOT = Path(__file__).resolve().parents[2]
BEGIN = "<!-- BEGIN settings reference (make readme) -->\n"
END = "<!-- END settings reference -->"


def test_reference_in_sync() -> None:
    readme = (ROOT / "README.md").read_text()
    assert BEGIN in readme and END in readme, "README lost its settings reference markers"
    current = readme.split(BEGIN, 1)[1].split(END, 1)[0]
    expected = reference_markdown(list(ENTRYPOINTS))
    assert current.strip() == expected.strip(), "README reference is stale: run `make readme`"


def test_quick_start_has_exactly_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in quick.splitlines() if line.startswith("make ")]
    assert commands == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
