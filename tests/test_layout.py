"""The tests mirror the source folders: a test folder names a package whose tests it holds."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, TESTS

DATA_FOLDERS = {"golden", "invalid", "__pycache__"}


def test_every_test_folder_mirrors_a_source_package() -> None:
    orphans = []
    for folder in sorted(p for p in TESTS.rglob("*") if p.is_dir() and not DATA_FOLDERS & set(p.parts)):
        relative = folder.relative_to(TESTS)
        # tests/backends/torch/ holds the tests of backends/torch/; tests/lang/ those of rnnspec/lang/
        source = REPO / relative if relative.parts[0] == "backends" else REPO / "rnnspec" / relative
        if not (source / "__init__.py").is_file():
            orphans.append(f"tests/{relative} (no package at {source.relative_to(REPO)})")
    assert not orphans, orphans


def test_every_package_folder_is_installed() -> None:
    """pyproject.toml lists the packages by hand (backends/ installs as rnnspec_backends): a folder left out would
    pass the editable install's tests and be missing from `pip install .`."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(("rnnspec_backends" if top == "backends" else top, *init.parent.relative_to(REPO / top).parts))
        for top in ("rnnspec", "backends")
        for init in (REPO / top).rglob("__init__.py")
    }
    assert listed == found
