"""Shared options and fixtures, and which backends a run must test (``RNNSPEC_TEST_BACKENDS``).

Unset, every backend is required: a framework that fails to import fails the run at its start, and
a test that would skip for want of it fails instead. ``RNNSPEC_TEST_BACKENDS=numpy,torch`` requires
only those (the others' tests skip, saying why); a name that is not a backend is a usage error.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SPECS = REPO / "specs"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files from the current output")
    parser.addoption(
        "--full-matrix", action="store_true", help="run the whole generated parity matrix (slow) instead of a sample"
    )
    parser.addoption("--slow", action="store_true", help="also run the tests marked slow (CI keeps one fast case each)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a long case of a behaviour CI already covers fast; run with --slow")
    config.stash[_REQUIRED] = _required_modules()


_REQUIRED = pytest.StashKey[dict[str, str]]()
ENV = "RNNSPEC_TEST_BACKENDS"


def _backend_modules() -> dict[str, tuple[str, ...]]:
    """Each backend and export format → the modules it needs, from the registry (plugins included)."""
    from rnnspec.core import registry

    needs: dict[str, tuple[str, ...]] = {}
    for table in (registry.BUILTIN_BACKENDS, registry.EXPORT_FORMATS):
        for name, entry in table.items():
            # the backend's own module first: the keras backend chooses Keras's backend before Keras is imported
            needs[name] = (*needs.get(name, ()), entry.target.split(":")[0], *entry.framework_modules)
    for name in registry.available_backends():
        needs.setdefault(name, ())
    return needs


def required_backends() -> list[str]:
    """The backends and export formats this run must test (validated ``RNNSPEC_TEST_BACKENDS``; unset: all)."""
    needs = _backend_modules()
    raw = os.environ.get(ENV)
    if raw is None:
        wanted = list(needs)
    else:
        wanted = [n.strip() for n in raw.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in needs]
        if unknown:
            raise pytest.UsageError(
                f"{ENV}={raw!r}: {', '.join(unknown)} is not a backend or export format; "
                f"expected a comma-separated list of: {', '.join(needs)}. fix: correct the name, or unset {ENV} "
                "to require them all"
            )
    return wanted


def _required_modules() -> dict[str, str]:
    """Module name → the backend that requires it, for the backends this run must test."""
    needs = _backend_modules()
    required = {module: name for name in required_backends() for module in needs[name]}
    for module, name in required.items():
        try:
            importlib.import_module(module)
        except Exception as exc:  # a broken install fails as surely as a missing one
            raise pytest.UsageError(
                f"backend {name!r} is required but {module} does not import ({type(exc).__name__}: {exc}). fix: "
                f"install it (pip install -e '.[all,dev]'), or leave {name} out of {ENV} to skip its tests"
            ) from None
    return required


def _required_skip(config: pytest.Config, report: pytest.TestReport | pytest.CollectReport) -> str | None:
    """The message for a skip caused by a required backend's module not importing, else None."""
    if not report.skipped or not isinstance(report.longrepr, tuple):
        return None
    message = str(report.longrepr[2])
    if "could not import '" not in message:
        return None
    module = message.split("could not import '", 1)[1].split("'", 1)[0]
    required = config.stash.get(_REQUIRED, {})
    owner = required.get(module)
    if owner is None and module.startswith("rnnspec_backends."):
        owner = next((name for known, name in required.items() if known.startswith(module + ".")), None)
    if owner is None:
        return None
    return f"backend {owner!r} is required ({ENV}) but the test skipped: {message}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    message = _required_skip(item.config, report)
    if message is not None:
        report.outcome, report.longrepr = "failed", message


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    outcome = yield
    report = outcome.get_result()
    message = _required_skip(collector.config, report)
    if message is not None:
        report.outcome, report.longrepr = "failed", message


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


@pytest.fixture(scope="module")
def L():
    """``keras.layers``, for the per-kind tests' hand-written Keras models (skips where Keras is optional)."""
    from tests.parity import backend_or_skip

    backend_or_skip("keras")
    from rnnspec_backends.keras.runtime import keras

    return keras.layers
