"""Golden summaries (run `pytest --update-golden` to rewrite them, then review the diff) and invariants."""

from __future__ import annotations

import pytest

from rnnspec import analyze, load_spec
from rnnspec.lang.summary import readable_size, render_summary
from tests.conftest import SPECS, TESTS

GOLDEN = TESTS / "golden"
CASES = [(p.stem, conv) for p in sorted(SPECS.glob("*.yaml")) for conv in ("keras", "torch")]


@pytest.mark.parametrize(("stem", "convention"), CASES, ids=[f"{s}-{c}" for s, c in CASES])
def test_golden_summary(stem: str, convention: str, update_golden: bool):
    text = render_summary(analyze(load_spec(SPECS / f"{stem}.yaml"), convention))
    golden = GOLDEN / f"{stem}.{convention}.txt"
    if update_golden:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"missing golden file {golden}; run pytest --update-golden"
    assert text == golden.read_text()


@pytest.mark.parametrize(
    ("n_bytes", "text"),
    # Keras 3's summary: 322,113 float32 params print as "1.23 MB"; 0 as "0.00 B"; 720 B stay bytes.
    [
        (322_113 * 4, "1.23 MB"),
        (0, "0.00 B"),
        (720, "720.00 B"),
        (3_108_910 * 4, "11.86 MB"),
        (2048, "2.00 KB"),
    ],
)
def test_readable_size_like_keras(n_bytes: int, text: str):
    assert readable_size(n_bytes) == text


def test_shapes_follow_keras_notation():
    result = analyze(load_spec(SPECS / "stacked_simplernn.yaml"))
    assert [r.shape_text() for r in result.layers] == [
        "(None, None, 32)",
        "(None, None, 32)",
        "(None, None, 32)",
        "(None, None, 32)",
        "(None, 32)",
    ]
    bi = analyze(load_spec(SPECS / "bidirectional_lstm.yaml"))
    assert bi.layers[1].type == "Bidirectional" and bi.layers[1].output_shape == (None, 64)
