"""`rnnspec export --format keras`: a .keras file of Keras's own layers that Keras opens without rnnspec."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rnnspec_backends.keras.model", reason="the keras backend needs the keras extra")

import rnnspec
from rnnspec.cli import main
from rnnspec.interop.proof import hard_inputs

TOL = 1e-5

SPECS = {
    "masked_bidirectional": """
rnnspec: 1.1
name: masked-bi
input: {vocab_size: 30}
embedding: {output_dim: 5, mask_zero: true}
recurrent:
  - {cell: lstm, units: 4, return_sequences: true, bidirectional: true, merge_mode: sum}
  - {spatial_dropout: 0.1}
  - {cell: gru, units: 3, reset_after: false}
head: [{units: 6, activation: relu}, {dropout: 0.2}, {units: 2, activation: softmax}]
""",
    "torch_convention_lstm": """
rnnspec: 1.1
name: torch-lstm
convention: torch
input: {features: 3, mask_value: 0.0}
recurrent: [{cell: lstm, units: 4, return_sequences: true}, {cell: simple_rnn, units: 2}]
head: {units: 1}
""",
}


def _random(spec: rnnspec.ModelSpec, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: (0.4 * rng.normal(size=v.shape)).astype(np.float32) for k, v in rnnspec.initial_weights(spec).items()}


@pytest.mark.parametrize("case", sorted(SPECS))
def test_exported_keras_file_opens_without_rnnspec_and_predicts_the_same(case: str, tmp_path: Path) -> None:
    spec = rnnspec.loads_spec(SPECS[case])
    weights = _random(spec)
    target = tmp_path / "model.keras"
    assert rnnspec.export(spec, "keras", target, weights=weights) == [target]
    x = hard_inputs(spec, seed=2)
    np.save(tmp_path / "x.npy", x)
    expected = rnnspec.predict(rnnspec.build(spec, "numpy", weights=weights), x)
    script = (
        "import os, sys\nos.environ['KERAS_BACKEND'] = 'tensorflow'\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n"
        "sys.modules['rnnspec'] = None\nsys.modules['rnnspec_backends'] = None\n"
        "import numpy as np, keras\n"
        f"m = keras.saving.load_model({str(target)!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, np.asarray(m(np.load({str(tmp_path / 'x.npy')!r}), training=False)))\n"
        "print(sorted({type(layer).__module__.split('.')[0] for layer in m.layers}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "['keras']"
    assert np.max(np.abs(np.load(tmp_path / "y.npy") - expected)) <= TOL


def test_gru_without_reset_after_and_a_recurrent_bias_has_no_keras_form(tmp_path: Path, capsys) -> None:
    text = (
        "rnnspec: 1.1\nname: g\nconvention: torch\ninput: {features: 2}\n"
        "recurrent: [{cell: gru, units: 3, reset_after: false}]\n"
    )
    (tmp_path / "g.yaml").write_text(text)
    spec = rnnspec.loads_spec(text)
    rnnspec.save_weights(_random(spec), tmp_path / "g.safetensors", spec)
    code = main(["export", str(tmp_path / "g.yaml"), "--weights", str(tmp_path / "g.safetensors"), "--format", "keras",
                 "-o", str(tmp_path / "g.keras")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "reset_after: false" in err and "--backend keras" in err
    assert not (tmp_path / "g.keras").exists()


def test_cli_export_keras_prints_its_proof(tmp_path: Path, capsys) -> None:
    spec = rnnspec.loads_spec(SPECS["masked_bidirectional"])
    (tmp_path / "s.yaml").write_text(SPECS["masked_bidirectional"])
    rnnspec.save_weights(_random(spec, 1), tmp_path / "w.safetensors", spec)
    code = main(["export", str(tmp_path / "s.yaml"), "--weights", str(tmp_path / "w.safetensors"), "-f", "keras",
                 "-o", str(tmp_path / "m.keras")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "exported keras vs rnnspec numpy" in out and "ok" in out


def test_a_fifo_at_the_keras_output_is_not_replaced(tmp_path: Path, capsys) -> None:
    import os
    import stat

    spec = rnnspec.loads_spec(SPECS["masked_bidirectional"])
    (tmp_path / "s.yaml").write_text(SPECS["masked_bidirectional"])
    rnnspec.save_weights(_random(spec), tmp_path / "w.safetensors", spec)
    os.mkfifo(tmp_path / "m.keras")
    code = main(["export", str(tmp_path / "s.yaml"), "--weights", str(tmp_path / "w.safetensors"), "-f", "keras",
                 "-o", str(tmp_path / "m.keras")])  # fmt: skip
    assert code == 1 and "FIFO" in capsys.readouterr().err
    assert stat.S_ISFIFO((tmp_path / "m.keras").stat().st_mode)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
