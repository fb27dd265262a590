"""What a user gets from `pip install overspill` without a clone: PyPI metadata, and CLI commands that need no
file from the repository (`overspill reference` prints the reference rendered from the installed models)."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from overspill.api.reference import default_output, render

OVERSPILL = str(Path(sys.executable).with_name("overspill"))


def test_distribution_metadata_names_version_license_urls_and_classifiers() -> None:
    meta = metadata.metadata("overspill")
    assert meta["Name"] == "overspill"
    assert meta["Version"] == metadata.version("overspill") != ""
    assert meta["License-Expression"] == "Apache-2.0"
    assert "LICENSE" in (meta.get_all("License-File") or [])
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(urls), urls
    classifiers = meta.get_all("Classifier") or []
    assert "License :: OSI Approved :: Apache Software License" not in classifiers  # PEP 639: the expression only
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert "Typing :: Typed" in classifiers


def test_reference_outside_a_checkout_prints_to_standard_output(tmp_path: Path) -> None:
    out = subprocess.run([OVERSPILL, "reference"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout == render()
    assert list(tmp_path.iterdir()) == []  # nothing written next to the user's files


def test_reference_in_a_checkout_regenerates_docs_reference(tmp_path: Path) -> None:
    assert default_output(tmp_path) is None
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/reference.md").write_text("stale\n")
    (tmp_path / "pyproject.toml").write_text("")
    out = subprocess.run([OVERSPILL, "reference"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "docs/reference.md").read_text() == render()
    assert out.stdout.strip() == "docs/reference.md"


def test_reference_dash_writes_to_standard_output_even_in_a_checkout() -> None:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [OVERSPILL, "reference", "--output", "-"], cwd=root, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0 and out.stdout == render()
