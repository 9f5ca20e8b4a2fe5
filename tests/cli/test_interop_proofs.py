"""``rnnspec import`` and ``export``: proofs judged against the noise floor, and a failed proof writes nothing.

The chaotic model is Embedding(50, 8) -> LSTM(32) -> Dense(1) with every weight drawn from N(0, 1), over 60 steps:
the smallest found where float32 rounding alone grows past 1e-5 (each test shows it by an independent computation:
the model in float32 against the same model in float64). A wrong copy has one input-kernel weight off by 1e-3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from rnnspec.interop.proof import TOLERANCE, hard_inputs

torch = pytest.importorskip("torch")
from torch import nn

UNITS, STEPS = 32, 60
SPEC = f"""
rnnspec: 1.1
name: chaotic
convention: torch
input: {{vocab_size: 50, seq_len: {STEPS}}}
embedding: {{output_dim: 8}}
recurrent: [{{cell: lstm, units: {UNITS}}}]
head: {{units: 1}}
"""


class Chaotic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 8)
        self.lstm = nn.LSTM(8, UNITS, batch_first=True)
        self.fc = nn.Linear(UNITS, 1)
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.emb(x))
        return self.fc(out[:, -1])


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _float32_rounding(module: nn.Module, x: np.ndarray) -> float:
    """How far the module's float32 outputs are from the same module in float64: rounding alone."""
    with torch.no_grad():
        single = module(torch.from_numpy(x)).numpy().astype(np.float64)
        double = module.double()(torch.from_numpy(x)).numpy()
    module.float()
    return float(np.abs(single - double).max())


@pytest.fixture
def state_dict(tmp_path: Path) -> tuple[Path, Path, Chaotic]:
    module = Chaotic().eval()
    torch.save(module.state_dict(), tmp_path / "model.pt")
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path / "model.pt", tmp_path / "spec.yaml", module


def test_a_correct_import_of_a_chaotic_state_dict_passes_within_the_noise_floor(state_dict, tmp_path, capsys):
    pt, spec, module = state_dict
    x = hard_inputs(rnnspec.loads_spec(SPEC))
    assert _float32_rounding(module, x) > 5 * TOLERANCE  # measured 1.1e-4: over the fixed tolerance
    assert main(["import", str(pt), "--spec", str(spec), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "DIFFERENT" not in out and "x its noise floor" in out and "float32 ulp" in out
    assert (tmp_path / "out" / "spec.yaml").exists() and (tmp_path / "out" / "weights.safetensors").exists()


def test_the_state_dict_proof_says_it_cannot_see_the_modules_forward(state_dict, tmp_path, capsys):
    pt, spec, _ = state_dict
    assert main(["import", str(pt), "--spec", str(spec), "-o", str(tmp_path / "out")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "compared with each other" in out
    assert "this proof cannot see your module's forward()" in out
    assert "rnnspec.testing.assert_equivalent(module, 'numpy', spec=SPEC)" in out


def _spec_and_weights(state_dict, tmp_path: Path) -> tuple[Path, Path]:
    pt, spec, _ = state_dict
    assert main(["import", str(pt), "--spec", str(spec), "-o", str(tmp_path / "imported")]) == 0
    return tmp_path / "imported" / "spec.yaml", tmp_path / "imported" / "weights.safetensors"


def _off_by_1e_3(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    wrong = {k: np.array(v, copy=True) for k, v in weights.items()}
    kernel = next(k for k, v in wrong.items() if v.shape == (8, 4 * UNITS))  # the LSTM's input kernel
    wrong[kernel][0, 0] += 1e-3
    return wrong


@pytest.mark.parametrize("fmt", ["torch", "onnx"])
def test_a_correct_export_of_a_chaotic_model_passes(fmt, state_dict, tmp_path, capsys):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    spec, weights = _spec_and_weights(state_dict, tmp_path)
    target = tmp_path / "exported" / ("model.py" if fmt == "torch" else "model.onnx")
    capsys.readouterr()
    assert main(["export", str(spec), "--weights", str(weights), "--format", fmt, "-o", str(target)]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "noise floor" in out and "noise floor not measured" not in out
    assert target.exists()


def test_a_failed_export_proof_leaves_the_output_folder_exactly_as_it_was(state_dict, tmp_path, capsys, monkeypatch):
    from rnnspec.core import registry

    spec, weights = _spec_and_weights(state_dict, tmp_path)
    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / "model.py").write_text("# the user's earlier export\n")
    before = _snapshot(folder)
    real = registry.get_exporter

    def wrong_exporter(fmt: str):
        exporter = real(fmt)
        return lambda spec, values, path: exporter(spec, _off_by_1e_3(values), path)

    monkeypatch.setattr(registry, "get_exporter", wrong_exporter)
    capsys.readouterr()
    args = ["export", str(spec), "--weights", str(weights), "--format", "torch", "-o", str(folder / "model.py")]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "DIFFERENT" in out and "proof failed: nothing was written" in out and "wrote" not in out
    assert _snapshot(folder) == before
    assert sorted(p.name for p in folder.iterdir()) == ["model.py"]  # no staging folder left behind


def test_a_failed_export_proof_into_a_new_folder_creates_nothing(state_dict, tmp_path, monkeypatch):
    from rnnspec.core import registry

    spec, weights = _spec_and_weights(state_dict, tmp_path)
    real = registry.get_exporter
    monkeypatch.setattr(registry, "get_exporter", lambda fmt: lambda s, v, p: real(fmt)(s, _off_by_1e_3(v), p))
    target = tmp_path / "new" / "model.py"
    assert main(["export", str(spec), "--weights", str(weights), "--format", "torch", "-o", str(target)]) == 1
    assert not (tmp_path / "new").exists()


@pytest.fixture
def keras_file(tmp_path: Path) -> Path:
    pytest.importorskip("rnnspec_backends.keras.model", reason="the keras backend needs the keras extra")
    import keras

    model = keras.Sequential(
        [keras.Input((STEPS,), dtype="int32"), keras.layers.Embedding(50, 8), keras.layers.LSTM(UNITS),
         keras.layers.Dense(1)]
    )  # fmt: skip
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0.0, 1.0, size=w.shape).astype(np.float32) for w in model.get_weights()])
    model.save(tmp_path / "chaotic.keras")
    return tmp_path / "chaotic.keras"


def test_a_wrong_copy_of_a_keras_file_fails_and_writes_nothing(keras_file, tmp_path, capsys, monkeypatch):
    from rnnspec.runtime import importing

    out = tmp_path / "out"
    assert main(["import", str(keras_file), "-o", str(out)]) == 0  # the correct copy passes (original vs builds)
    printed = capsys.readouterr().out
    assert "original Keras model vs rnnspec keras" in printed and "DIFFERENT" not in printed
    before = _snapshot(out)
    real = importing.import_model
    monkeypatch.setattr(importing, "import_model", lambda *a, **k: (lambda s, w: (s, _off_by_1e_3(w)))(*real(*a, **k)))
    assert main(["import", str(keras_file), "-o", str(out), "--overwrite"]) == 1
    printed = capsys.readouterr().out
    assert "DIFFERENT" in printed and "proof failed: nothing was written" in printed and "wrote" not in printed
    assert _snapshot(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["spec.yaml", "weights.safetensors"]
