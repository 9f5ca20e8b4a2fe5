"""The mutation score of the porting-mistake catalogue: each twin, correct, must pass the default call; each
planted mistake must be named. Used by tests/testing/test_mutation.py and benchmarks/conformance_mutation.py."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from tests.testing.twins import Case


@dataclass(frozen=True)
class Outcome:
    case: str
    planted: str
    """The switch planted (``correct``: none)."""
    expected: str | None
    named: str | None
    passed: bool

    @property
    def ok(self) -> bool:
        return self.passed if self.planted == "correct" else (not self.passed and self.named == self.expected)


def run_case(name: str, case: Case, planted: list[str] | None = None) -> list[Outcome]:
    """The correct twin and each planted mistake of ``case`` (or only those in ``planted``)."""
    from rnnspec.testing import compare

    outcomes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = compare(case.keras_model(), case.twin())
        outcomes.append(Outcome(name, "correct", None, report.mistake, report.passed))
        for switch, expected in case.planted.items():
            if planted is not None and switch not in planted:
                continue
            report = compare(case.keras_model(), case.twin(switch))
            outcomes.append(Outcome(name, switch, expected, report.mistake, report.passed))
    return outcomes


def score(cases: dict[str, Case]) -> tuple[list[Outcome], int, int, int, int]:
    """Every outcome, then (mistakes named, mistakes planted, correct twins passed, correct twins)."""
    outcomes = [o for name, case in cases.items() for o in run_case(name, case)]
    planted = [o for o in outcomes if o.planted != "correct"]
    correct = [o for o in outcomes if o.planted == "correct"]
    return outcomes, sum(o.ok for o in planted), len(planted), sum(o.ok for o in correct), len(correct)
