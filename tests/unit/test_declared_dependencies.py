"""What `pip install` brings in is what the code uses: each runtime dependency of pyproject.toml is imported (or
located by its module name, as the Swagger UI assets are) somewhere in contracts/ or services/."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def _modules_by_distribution() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for module, distributions in importlib.metadata.packages_distributions().items():
        for distribution in distributions:
            found.setdefault(_normalise(distribution), set()).add(module)
    return found


def _uses(source: str, module: str) -> bool:
    imported = re.search(rf"^\s*(?:import|from)\s+{re.escape(module)}\b", source, re.MULTILINE)
    # Or found by name for its files: find_spec("swagger_ui") (the Swagger UI assets), resources.files("font_roboto").
    located = re.search(rf"(?:find_spec|import_module|files)\(\s*[\"']{re.escape(module)}[\"']", source)
    return bool(imported or located)


def test_every_runtime_dependency_is_used_by_the_code() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    source = "\n".join(p.read_text() for d in ("contracts", "services") for p in sorted((ROOT / d).rglob("*.py")))
    modules = _modules_by_distribution()
    unused = []
    for requirement in declared:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        assert match is not None, requirement
        name = _normalise(match.group())
        assert modules.get(name), f"{name} is declared but not installed: run make (or pip install -e .)"
        if not any(_uses(source, module) for module in modules[name]):
            unused.append(name)
    assert not unused, f"declared in pyproject.toml but never used: {unused}"
