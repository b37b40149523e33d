"""What a wheel of this project installs: one top-level import package, animated_previews.

The repository keeps the card's folders (engine/, kernels/, cli/) at its top; a wheel maps them
under ``animated_previews`` so that installing it beside another distribution with a generic
top-level name (Hugging Face's ``kernels``, say) overwrites nothing and is overwritten by nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a fresh copy of the sources: setuptools reuses a checkout's build/ folder, which
    may hold modules the current package list no longer names."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    for top in ("engine", "kernels", "cli"):
        shutil.copytree(REPO_ROOT / top, source / top, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(source)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_installs_one_top_level_import_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"animated_previews"}


def test_every_module_of_the_repository_is_in_the_wheel(wheel):
    """pyproject.toml lists the packages by hand (they are mapped, not found): a new subpackage
    missing there would be missing from every install."""
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = sorted(str(p.relative_to(REPO_ROOT)) for top in ("engine", "kernels", "cli")
                     for p in (REPO_ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)
    assert len(sources) > 50
    missing = [s for s in sources if f"animated_previews/{s}" not in names]
    assert missing == []


def test_installed_beside_a_package_named_kernels_both_keep_working(wheel, tmp_path):
    """Installed into one folder with another distribution's top-level ``kernels`` package, the
    engine's kernels and the other package are both importable, each from its own files."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    (target / "kernels").mkdir()
    (target / "kernels" / "__init__.py").write_text("WHO = 'another distribution'\n")
    code = ("import kernels, animated_previews.kernels.resize as r, animated_previews.engine as e, sys; "
            "print(kernels.WHO); print(r.__file__); print(e.__file__); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('engine', 'cli')))")
    env = {**os.environ, "PYTHONPATH": str(target)}
    shown = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                           check=True, timeout=120).stdout.splitlines()
    assert shown[0] == "another distribution"
    assert shown[1].startswith(str(target / "animated_previews" / "kernels"))
    assert shown[2].startswith(str(target / "animated_previews" / "engine"))
    assert shown[3] == "[]"  # nothing imported under a bare top-level name


def test_the_engine_command_runs_from_the_installed_names():
    shown = subprocess.run([sys.executable, "-c", "from animated_previews.cli.main import main; main()", "--version"],
                           cwd="/", capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "version" in shown.stdout
