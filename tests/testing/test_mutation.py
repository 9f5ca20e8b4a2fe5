"""The mutation test of the porting-mistake catalogue on hand-written twins (tests/testing/twins.py and the
held-out tests/testing/twins_heldout.py): each correct twin passes the default call, each planted mistake is
named. A fast subset runs in CI; the whole score (benchmarks/conformance_mutation.py prints it) is slow."""

from __future__ import annotations

import numpy as np
import pytest

from tests.parity import backend_or_skip

backend_or_skip("torch")
backend_or_skip("keras")

from rnnspec.testing import ConformanceWarning, assert_equivalent, compare
from tests.testing.mutation import run_case, score
from tests.testing.twins import DESIGN
from tests.testing.twins_heldout import HELD_OUT

FAST = {"imdb": ["first", "post"], "stacked": ["layer0"], "bigru": ["swapped", "batch_first"]}
"""The issue's two commonest mistakes, the wrong layer's state and the wrong direction, and time/batch swapped."""


@pytest.mark.parametrize("case", list(FAST))
def test_the_commonest_mistakes_are_named_and_the_correct_twin_passes(case: str):
    for outcome in run_case(case, DESIGN[case], FAST[case]):
        assert outcome.ok, outcome


def test_the_report_reads_its_clues():
    """out[:, 0]: the recurrent kernel's gradient is exactly 0, and the report says so next to the name."""
    report = compare(DESIGN["stacked"].keras_model(), DESIGN["stacked"].twin("first"))
    assert report.mistake == "first_step" and "output[:, 0]" in (report.cause or "")
    assert "gradient of lstm_1/recurrent_kernel" in (report.cause or "") or "exactly 0" in (report.cause or "")


def test_a_module_handed_in_train_mode_is_compared_in_both_modes_and_left_in_it():
    module = DESIGN["imdb"].twin()  # nn.Dropout: a fresh module is in train mode
    with pytest.warns(ConformanceWarning, match="dropout_at_evaluation: the second model was handed over in train"):
        report = assert_equivalent(DESIGN["imdb"].keras_model(), module)
    assert module.training and report.passed
    row = next(r for r in report.rows if r.what.startswith("outputs in train mode"))
    assert row.warning and not row.within
    assert any("handed over in train mode" in note and "left in train mode" in note for note in report.notes)
    module.eval()
    quiet = compare(DESIGN["imdb"].keras_model(), module)
    assert quiet.passed and not quiet.warnings and not module.training
    assert "handed over in eval mode" in " ".join(quiet.notes)


def test_the_users_rows_get_the_hard_rows_added():
    """A row of padding then tokens: the user's rows alone (all full) would not show a dropped mask."""
    x = np.random.default_rng(0).integers(1, 30, size=(3, 12))
    report = compare(DESIGN["tagger"].keras_model(), DESIGN["tagger"].twin("no_mask"), inputs=x)
    row = next(r for r in report.rows if r.what == "outputs (your rows and the hard inputs)")
    assert "your row 0" in row.note.split("agrees on")[1] and "row 0 (pre-padded)" in row.note.split("agrees")[0]
    assert report.mistake == "mask_dropped"


def test_assert_equivalent_hides_its_frames_from_pytest():
    from rnnspec.testing import equivalence

    assert "__tracebackhide__ = True" in __import__("inspect").getsource(equivalence.assert_equivalent)


@pytest.mark.slow
@pytest.mark.parametrize(("cases", "expected"), [(DESIGN, (19, 19)), (HELD_OUT, (15, 16))], ids=["design", "held"])
def test_the_mutation_score_is_the_documented_one(cases, expected):
    outcomes, named, planted, passed, correct = score(cases)
    assert (named, planted) == expected and passed == correct, [o for o in outcomes if not o.ok]
