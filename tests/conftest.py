from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files from the current output")
    parser.addoption(
        "--full-matrix", action="store_true", help="run the whole generated parity matrix (slow) instead of a sample"
    )
    parser.addoption("--slow", action="store_true", help="also run the tests marked slow (CI keeps one fast case each)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a long case of a behaviour CI already covers fast; run with --slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "matrix_case" in metafunc.fixturenames:
        from .parity import case_id, matrix_cases

        cases = matrix_cases(full=bool(metafunc.config.getoption("--full-matrix")))
        metafunc.parametrize("matrix_case", cases, ids=[case_id(c) for c in cases])


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
