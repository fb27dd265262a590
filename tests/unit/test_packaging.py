"""What a user gets from `pip install overspill` without a clone: PyPI metadata, and CLI commands that need no
file from the repository (`overspill reference` prints the reference rendered from the installed models)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import yaml

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


def test_project_home_is_one_address_everywhere() -> None:
    """The project's home is one constant: pyproject.toml's Homepage. The other places that name it (the other
    Project-URLs, the chart, the image label, the default image, the README) must say the same, so a fork or a move
    changes one address and this test lists the rest."""
    root = Path(__file__).resolve().parents[2]
    urls = tomllib.loads((root / "pyproject.toml").read_text())["project"]["urls"]
    home = urls["Homepage"]
    assert re.fullmatch(r"https://github\.com/[a-z0-9-]+/[a-z0-9-]+", home), home
    assert urls == {
        "Homepage": home,
        "Documentation": f"{home}/tree/main/docs",
        "Source": home,
        "Issues": f"{home}/issues",
    }
    chart = yaml.safe_load((root / "charts/overspill/Chart.yaml").read_text())
    assert (chart["home"], chart["sources"]) == (home, [home])
    assert f'org.opencontainers.image.source="{home}"' in (root / "Dockerfile").read_text()
    image = home.replace("https://github.com/", "ghcr.io/")  # the name a release of that repository publishes
    values = yaml.safe_load((root / "charts/overspill/values.yaml").read_text())
    assert values["image"]["repository"] == image
    kustomization = yaml.safe_load((root / "manifests/kustomization.yaml").read_text())
    assert kustomization["images"][0]["name"] == kustomization["images"][0]["newName"] == image
    assert f"image: {image}:" in (root / "manifests/base/deployment.yaml").read_text()
    readme = (root / "README.md").read_text()
    assert f"Project home: <{home}>" in readme, "the README names the project's home"
    assert re.findall(r"https://github\.com/overspill[^\s)>]*", readme) == [home]  # and no other address of ours
