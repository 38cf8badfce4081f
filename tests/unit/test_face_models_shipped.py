"""The face models travel with the package: every file in services/renderer/models is in setuptools' package-data,
and every model the code loads is there (nothing is downloaded at run time)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "services" / "renderer" / "models"


def test_every_model_file_is_package_data() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = globs["services.renderer"]
    files = sorted(p for p in MODELS.iterdir() if p.is_file())
    assert any(p.suffix == ".tflite" for p in files)
    package = ROOT / "services" / "renderer"
    missing = [p.name for p in files if not any(p.relative_to(package).match(g) for g in shipped)]
    assert not missing, f"not in package-data: {missing}"
    assert "Apache License" in (MODELS / "LICENSE").read_text()


def test_every_model_the_code_loads_is_shipped() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "services" / "renderer").glob("*.py"))
    named = set(re.findall(r"\"([a-z_]+\.tflite)\"", source))
    assert named >= {"face_detection_short_range.tflite", "face_landmark.tflite", "selfie_segmentation.tflite"}
    assert all((MODELS / name).is_file() for name in named), named
