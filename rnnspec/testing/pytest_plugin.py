"""rnnspec's pytest plugin (entry point ``pytest11``): equivalence tests collected from spec files, and fixtures.

    pytest --rnnspec-specs specs/                      # one test per spec and pair of backends
    pytest --rnnspec-specs specs/ --rnnspec-pairs keras:torch,torch:numpy

Each collected test builds the spec on both backends of a pair and runs
:func:`rnnspec.testing.assert_equivalent` on them; a failure prints its report (the worst element, the
rows that differ, the porting mistake that explains it). For a suite's own models, the fixture
``rnnspec_equivalent`` is :func:`~rnnspec.testing.assert_equivalent`::

    def test_my_port(rnnspec_equivalent):
        rnnspec_equivalent(my_keras_model, MyTorchModule(), "spec.yaml")

Nothing here imports a framework until a test runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def _default_pairs() -> str:
    """The first two built-in backends that drive their framework's models (gradients compared): keras:torch."""
    from rnnspec.core.registry import backends_with

    return ":".join(backends_with("live_models", plugins=False)[:2])


def pytest_addoption(parser: pytest.Parser) -> None:
    from rnnspec.core.registry import available_backends

    default = _default_pairs()
    group = parser.getgroup("rnnspec", "rnnspec equivalence tests")
    group.addoption(
        "--rnnspec-specs",
        action="append",
        default=[],
        metavar="DIR",
        help="collect one equivalence test per spec file in DIR (or a spec file) and pair of backends",
    )
    group.addoption(
        "--rnnspec-pairs",
        default=default,
        metavar="A:B,...",
        help=f"the backend pairs to compare ({', '.join(available_backends())}) [default: {default}]",
    )


def _pairs(text: str) -> list[tuple[str, str]]:
    from rnnspec.core.registry import available_backends

    backends = available_backends()  # the built-ins and every plugin of the rnnspec.backends entry point
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        a, _, b = item.partition(":")
        if a not in backends or b not in backends or a == b:
            raise pytest.UsageError(f"--rnnspec-pairs: {item!r} is not two different backends of {', '.join(backends)}")
        pairs.append((a, b))
    return pairs


def _spec_files(place: str) -> Iterator[Path]:
    path = Path(place)
    if path.is_file():
        yield path
    elif path.is_dir():
        yield from sorted(p for p in path.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file())
    else:
        raise pytest.UsageError(f"--rnnspec-specs: {place} is neither a spec file nor a folder")


def _shown(path: Path, root: Path) -> str:
    """The spec's path as the test id shows it: relative to pytest's root folder where it is inside it."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


class SpecEquivalence(pytest.Item):
    """One spec, two backends: the builds agree in outputs and gradients."""

    def __init__(self, *, path: Path, pair: tuple[str, str], **kwargs: Any):
        super().__init__(**kwargs)
        self.spec_path, self.pair = path, pair

    def runtest(self) -> None:
        from rnnspec import load_spec
        from rnnspec.core.registry import backends_with
        from rnnspec.testing import assert_equivalent

        __tracebackhide__ = True
        a, b = self.pair
        gradients = backends_with("live_models")  # a backend that drives its models gives their gradients
        assert_equivalent(a, b, load_spec(self.spec_path), grads=a in gradients and b in gradients)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from rnnspec.lang.errors import RnnspecError

        if isinstance(excinfo.value, (AssertionError, RnnspecError)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.spec_path, None, f"{_shown(self.spec_path, self.config.rootpath)}: {self.pair[0]} ≡ {self.pair[1]}"


class SpecFolder(pytest.Collector):
    """The spec files named by ``--rnnspec-specs``."""

    def __init__(self, *, places: list[str], pairs: list[tuple[str, str]], **kwargs: Any):
        super().__init__(**kwargs)
        self.places, self.pairs = places, pairs

    def collect(self) -> list[pytest.Item]:
        items: list[pytest.Item] = []
        for place in self.places:
            for path in _spec_files(place):
                for a, b in self.pairs:
                    name = f"{_shown(path, self.config.rootpath)}[{a}-{b}]"  # the folder too: specs/x.yaml
                    items.append(SpecEquivalence.from_parent(self, name=name, path=path, pair=(a, b)))
        return items


def pytest_configure(config: pytest.Config) -> None:
    """Bad ``--rnnspec-pairs`` are a usage error (exit 4) before anything is collected."""
    if config.getoption("rnnspec_specs", None):
        _pairs(config.getoption("rnnspec_pairs"))


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """The spec folder joins the session's own collectors, in pytest's collection phase: its tests are counted
    ("N tests collected"), listed by ``--collect-only`` and selected by ``-k``/``-m`` like any other."""
    report = yield
    places = collector.config.getoption("rnnspec_specs")
    if isinstance(collector, pytest.Session) and places and report.passed:
        pairs = _pairs(collector.config.getoption("rnnspec_pairs"))
        report.result.append(SpecFolder.from_parent(collector, name="rnnspec-specs", places=places, pairs=pairs))
    return report


@pytest.fixture
def rnnspec_equivalent() -> Any:
    """:func:`rnnspec.testing.assert_equivalent`, for a suite's own models."""
    from rnnspec.testing import assert_equivalent

    return assert_equivalent
