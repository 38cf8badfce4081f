"""README.md names every environment variable the code reads: an operator learns the settings from it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A string literal that is a variable's name: ours, and the providers' that the adapters read themselves.
_VARIABLE = re.compile(
    r"""["'](?P<name>(?:ADAGENT|GOOGLE|GEMINI|ELEVENLABS|HIBARI|STORAGE_EMULATOR)_[A-Z0-9_]*[A-Z0-9])["']"""
)


def read_variables() -> set[str]:
    names: set[str] = set()
    for folder in ("contracts", "services"):
        for path in (ROOT / folder).rglob("*.py"):
            names.update(m["name"] for m in _VARIABLE.finditer(path.read_text(encoding="utf-8")))
    return names


def test_readme_names_every_variable_the_code_reads() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    variables = read_variables()
    assert len(variables) > 40  # the pattern still finds them
    missing = sorted(v for v in variables if not re.search(rf"`{v}`", readme))
    assert missing == [], f"README.md does not name: {', '.join(missing)}"
