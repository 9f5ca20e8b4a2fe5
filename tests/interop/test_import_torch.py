"""Importing PyTorch state dicts of modules written by hand, compiled to Keras (and torch): the same outputs.

Each module is plain PyTorch (nn.Embedding, nn.RNN/LSTM/GRU, nn.Linear) computing what its spec
says; the reference outputs are the module's own. Weights are PyTorch's initialisation, biases
included (both of them, which the torch convention keeps).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("rnnspec_backends.keras.model", reason="the keras backend needs the keras extra")
from safetensors.torch import save_file
from torch import nn

import rnnspec
from rnnspec.cli import main
from rnnspec.runtime.importing import import_model

TOL = 1e-5


class Sentiment(nn.Module):
    spec = """
rnnspec: 1.1
name: sentiment
convention: torch
input: {vocab_size: 50}
embedding: {output_dim: 8}
recurrent: [{cell: lstm, units: 16}]
head: {units: 1, activation: sigmoid}
"""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 8)
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.emb(x))
        return torch.sigmoid(self.fc(out[:, -1]))


class StackedGRU(nn.Module):
    spec = """
rnnspec: 1.1
name: stacked-gru
convention: torch
input: {features: 4}
recurrent: [{cell: gru, units: 6, return_sequences: true}, {cell: gru, units: 6}]
head: {units: 3, activation: softmax}
"""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(4, 6, num_layers=2, batch_first=True)
        self.out = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(x)
        return torch.softmax(self.out(h[-1]), dim=-1)


class BiLSTM(nn.Module):
    spec = """
rnnspec: 1.1
name: bilstm
convention: torch
input: {features: 5}
recurrent: [{cell: lstm, units: 4, bidirectional: true}]
head: {units: 2}
"""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(5, 4, batch_first=True, bidirectional=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.rnn(x)
        return self.head(torch.cat([h[-2], h[-1]], dim=-1))


class ReluTagger(nn.Module):
    spec = """
rnnspec: 1.1
name: relu-tagger
convention: torch
input: {features: 3}
recurrent: [{cell: simple_rnn, units: 5, activation: relu, return_sequences: true}]
head: {units: 2}
"""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.RNN(3, 5, nonlinearity="relu", batch_first=True)
        self.proj = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.proj(out)


class NoBiasGRU(nn.Module):
    spec = """
rnnspec: 1.1
name: no-bias-gru
convention: torch
input: {features: 3}
recurrent: [{cell: gru, units: 4, use_bias: false}]
head: {units: 2, activation: tanh}
"""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(3, 4, bias=False, batch_first=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return torch.tanh(self.fc(out[:, -1]))


class DeepBiText(nn.Module):
    spec = """
rnnspec: 1.1
name: deep-bi-text
convention: torch
input: {vocab_size: 40}
embedding: {output_dim: 6}
recurrent:
  - {cell: lstm, units: 5, bidirectional: true, return_sequences: true}
  - {cell: lstm, units: 5, bidirectional: true}
head: [{units: 7, activation: relu}, {units: 3, activation: softmax}]
"""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(40, 6)
        self.lstm = nn.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True)
        self.hidden = nn.Linear(10, 7)
        self.classes = nn.Linear(7, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embedding(x))
        last = torch.cat([out[:, -1, :5], out[:, 0, 5:]], dim=-1)
        return torch.softmax(self.classes(torch.relu(self.hidden(last))), dim=-1)


MODULES = [Sentiment, StackedGRU, BiLSTM, ReluTagger, NoBiasGRU, DeepBiText]


def _inputs(spec: rnnspec.ModelSpec, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if spec.input.vocab_size is not None:
        return rng.integers(0, spec.input.vocab_size, size=(5, 9)).astype(np.int64)
    return rng.normal(size=(5, 9, spec.input.features)).astype(np.float32)


def _reference(module: nn.Module, x: np.ndarray) -> np.ndarray:
    module.eval()
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def _module(cls: type[nn.Module]) -> nn.Module:
    torch.manual_seed(MODULES.index(cls))
    module = cls()
    with torch.no_grad():  # non-zero biases everywhere (PyTorch's init already draws them)
        for name, p in module.named_parameters():
            if "bias" in name:
                p.add_(0.1)
    return module


@pytest.mark.parametrize("cls", MODULES, ids=[c.__name__ for c in MODULES])
def test_state_dict_compiles_to_keras_with_the_module_outputs(cls: type[nn.Module], tmp_path: Path) -> None:
    module = _module(cls)
    torch.save(module.state_dict(), tmp_path / "model.pt")
    (tmp_path / "spec.yaml").write_text(cls.spec)
    spec, weights = import_model(tmp_path / "model.pt", tmp_path / "spec.yaml")
    assert spec.convention == "torch"
    x = _inputs(spec)
    expected = _reference(module, x)
    for backend in ("keras", "numpy"):
        got = rnnspec.predict(rnnspec.build(spec, backend, weights=weights), x)
        assert np.max(np.abs(got - expected)) <= TOL, backend


def test_safetensors_state_dict_keys_are_matched_by_name_not_position(tmp_path: Path) -> None:
    module = _module(DeepBiText)
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp_path / "m.safetensors"))
    spec, weights = import_model(tmp_path / "m.safetensors", rnnspec.loads_spec(DeepBiText.spec))
    x = _inputs(spec, 1)
    got = rnnspec.predict(rnnspec.build(spec, "keras", weights=weights), x)
    assert np.max(np.abs(got - _reference(module, x))) <= TOL


def test_a_training_checkpoint_dict_is_searched_for_its_state_dict(tmp_path: Path) -> None:
    module = _module(Sentiment)
    torch.save({"epoch": 3, "model_state_dict": module.state_dict(), "loss": 0.25}, tmp_path / "ckpt.pth")
    spec, weights = import_model(tmp_path / "ckpt.pth", rnnspec.loads_spec(Sentiment.spec))
    x = _inputs(spec, 2)
    got = rnnspec.predict(rnnspec.build(spec, "numpy", weights=weights), x)
    assert np.max(np.abs(got - _reference(module, x))) <= TOL


def test_a_keras_convention_spec_is_imported_in_the_torch_convention(tmp_path: Path) -> None:
    module = _module(BiLSTM)
    torch.save(module.state_dict(), tmp_path / "m.pt")
    spec, weights = import_model(tmp_path / "m.pt", rnnspec.loads_spec(BiLSTM.spec.replace("convention: torch\n", "")))
    assert spec.convention == "torch" and "recurrent_0/forward/recurrent_bias" in weights


def test_a_pickled_module_is_refused_with_the_reason_and_the_fix(tmp_path: Path, capsys) -> None:
    torch.save(_module(Sentiment), tmp_path / "whole.pt")
    (tmp_path / "spec.yaml").write_text(Sentiment.spec)
    code = main(
        ["import", str(tmp_path / "whole.pt"), "--spec", str(tmp_path / "spec.yaml"), "-o", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "running code" in err and "model.state_dict()" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_a_state_dict_that_does_not_fit_lists_every_mismatch(tmp_path: Path) -> None:
    module = _module(Sentiment)
    state = module.state_dict()
    state["extra.weight"] = torch.zeros(3, 3, 3)
    torch.save(state, tmp_path / "m.pt")
    wrong = Sentiment.spec.replace("units: 16", "units: 12")
    with pytest.raises(rnnspec.RnnspecError) as info:
        import_model(tmp_path / "m.pt", rnnspec.loads_spec(wrong))
    message = str(info.value)
    assert "no nn.LSTM layer with 8 inputs and 12 units" in message
    # the stray 3-D tensor is read as an nn.Conv1d weight (module `extra`) and named as left over
    assert "left over: lstm (layer 0)" in message and "left over: extra (weight (3, 3, 3))" in message
    assert "no nn.Linear with bias with a weight of shape (1, 12)" in message


def test_a_state_dict_needs_a_spec(tmp_path: Path) -> None:
    torch.save(_module(Sentiment).state_dict(), tmp_path / "m.pt")
    with pytest.raises(rnnspec.RnnspecError, match="--spec SPEC"):
        import_model(tmp_path / "m.pt")


def test_lstm_projections_are_named(tmp_path: Path) -> None:
    torch.save({"lstm." + k: v for k, v in nn.LSTM(8, 16, proj_size=4).state_dict().items()}, tmp_path / "p.pt")
    with pytest.raises(rnnspec.RnnspecError, match="proj_size"):
        spec = "rnnspec: 1.1\nname: p\ninput: {features: 8}\nrecurrent: [{cell: lstm, units: 16}]\n"
        import_model(tmp_path / "p.pt", rnnspec.loads_spec(spec))


def test_cli_import_then_build_keras(tmp_path: Path, capsys) -> None:
    module = _module(StackedGRU)
    torch.save(module.state_dict(), tmp_path / "gru.pt")
    (tmp_path / "spec.yaml").write_text(StackedGRU.spec)
    out = tmp_path / "imported"
    assert main(["import", str(tmp_path / "gru.pt"), "--spec", str(tmp_path / "spec.yaml"), "-o", str(out)]) == 0
    assert "rnnspec numpy vs rnnspec keras" in capsys.readouterr().out
    keras_model = rnnspec.build(out / "spec.yaml", "keras", weights=out / "weights.safetensors")
    x = _inputs(rnnspec.spec_of(keras_model), 3)
    assert np.max(np.abs(rnnspec.predict(keras_model, x) - _reference(module, x))) <= TOL


def test_get_weights_of_a_users_module_given_its_spec() -> None:
    module = _module(ReluTagger)
    spec = rnnspec.loads_spec(ReluTagger.spec)
    weights = rnnspec.get_weights(module, spec=spec)
    x = _inputs(spec, 4)
    got = rnnspec.predict(rnnspec.build(spec, "keras", weights=weights), x)
    assert np.max(np.abs(got - _reference(module, x))) <= TOL
    with pytest.raises(rnnspec.RnnspecError, match="spec=SPEC"):
        rnnspec.get_weights(module)


def test_nan_weights_in_a_state_dict_are_named_and_refused_unless_allowed(tmp_path: Path, capsys) -> None:
    module = _module(StackedGRU)
    state = module.state_dict()
    state["out.weight"][0, :2] = float("nan")
    state["out.bias"][1] = float("inf")
    torch.save(state, tmp_path / "nan.pt")
    (tmp_path / "spec.yaml").write_text(StackedGRU.spec)
    args = ["import", str(tmp_path / "nan.pt"), "--spec", str(tmp_path / "spec.yaml"), "-o", str(tmp_path / "o")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "2 weight(s) hold NaN or infinite values" in err and "(2 of 18 values)" in err and "(1 of 3 values)" in err
    assert "--allow-nonfinite" in err and "Traceback" not in err and not (tmp_path / "o").exists()
    # accepted: the proof then compares the outputs, NaN where both sides are NaN counted equal; Keras's build
    # propagates the NaN head differently from the NumPy reference, so the proof fails and nothing is written
    assert main([*args, "--allow-nonfinite"]) == 1
    captured = capsys.readouterr()
    assert "hold NaN" not in captured.err and "proof failed: nothing was written" in captured.out
    assert not (tmp_path / "o").exists()
