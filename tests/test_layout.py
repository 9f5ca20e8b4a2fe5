"""The tests mirror the source folders: a test folder names a package whose tests it holds."""

from __future__ import annotations

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
