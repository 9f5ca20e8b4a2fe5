"""``rnnspec check SPEC --model A --model B``: two model files (a Keras model and a PyTorch state dict converted
from it by hand) compared with the weights they hold; a conversion mistake is named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnnspec.cli import main
from tests.parity import backend_or_skip

SPEC = """rnnspec: 1
name: gru-port
input: {features: 4, seq_len: 6}
recurrent:
  - {cell: gru, units: 3}
head: {units: 2, activation: softmax}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A Keras GRU model saved as .keras, and state dicts converted from its weights: right, gates misordered,
    and with bias_hh left at random values."""
    backend_or_skip("keras")
    backend_or_skip("torch")
    import keras
    import torch

    folder = tmp_path_factory.mktemp("port")
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((6, 4)), keras.layers.GRU(3), keras.layers.Dense(2, activation="softmax")])
    gru, dense = model.layers
    kernel, recurrent, bias = (w.numpy() for w in gru.weights)
    bias = bias + np.random.default_rng(0).normal(0, 0.3, size=bias.shape).astype(np.float32)  # biases matter
    gru.weights[2].assign(bias)
    model.save(folder / "model.keras")

    def to_torch(k: np.ndarray, order: list[int]) -> torch.Tensor:
        blocks = np.split(k, 3, axis=-1)  # Keras z, r, h
        return torch.tensor(np.concatenate([blocks[i] for i in order], axis=-1).T.copy())

    def state(order: list[int], bias_hh: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        return {
            "gru.weight_ih_l0": to_torch(kernel, order),
            "gru.weight_hh_l0": to_torch(recurrent, order),
            "gru.bias_ih_l0": to_torch(bias[0], order).reshape(-1),
            "gru.bias_hh_l0": to_torch(bias[1], order).reshape(-1) if bias_hh is None else torch.tensor(bias_hh),
            "fc.weight": torch.tensor(dense.weights[0].numpy().T.copy()),
            "fc.bias": torch.tensor(dense.weights[1].numpy()),
        }

    right, wrong = [1, 0, 2], [0, 1, 2]  # PyTorch's r, z, n from Keras's z, r, h; and copied as they are
    torch.save(state(right), folder / "right.pt")
    torch.save(state(wrong), folder / "gates.pt")
    (folder / "spec.yaml").write_text(SPEC)
    return {"dir": folder, "spec": folder / "spec.yaml", "keras": folder / "model.keras",
            "right": folder / "right.pt", "gates": folder / "gates.pt"}  # fmt: skip


def _check(files: dict[str, Path], *models: str, extra: tuple[str, ...] = ()) -> list[str]:
    return ["check", str(files["spec"]), *(x for m in models for x in ("--model", m)), *extra]


def test_a_correct_conversion_is_proven_equivalent(files, capsys):
    assert main(_check(files, str(files["keras"]), str(files["right"]))) == 0
    out = capsys.readouterr().out
    assert "the two models are equivalent" in out and "weights recurrent_0/kernel" in out


def test_a_conversion_with_the_gru_gates_in_pytorchs_order_is_named(files, capsys):
    assert main(_check(files, str(files["keras"]), str(files["gates"]), extra=("--json",))) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False and report["mistake"] == "gru_gate_order"
    assert "the second model behaves as if the GRU gates were ordered r, z, n" in report["cause"]
    failing = [row["what"] for row in report["rows"] if not row["passed"]]
    assert "weights recurrent_0/kernel" in failing and "outputs (hard inputs)" in failing


def test_a_file_against_a_backend_shares_the_files_weights(files, capsys):
    assert main(_check(files, str(files["right"]), "keras")) == 0
    assert "rnnspec's keras build" in capsys.readouterr().out


def test_model_given_once_is_a_usage_error(files, capsys):
    assert main(_check(files, "torch")) == 2
    assert "--model is given twice" in capsys.readouterr().err


def test_a_conversion_that_left_bias_hh_at_its_initial_values_is_named(files, capsys):
    """A Keras SimpleRNN has one bias; PyTorch's nn.RNN two: bias_hh must be zero after the copy."""
    import keras
    import torch

    folder = files["dir"]
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((6, 4)), keras.layers.SimpleRNN(3), keras.layers.Dense(2)])
    rnn, dense = model.layers
    model.save(folder / "rnn.keras")
    kernel, recurrent, bias = (w.numpy() for w in rnn.weights)
    state = {
        "rnn.weight_ih_l0": torch.tensor(kernel.T.copy()),
        "rnn.weight_hh_l0": torch.tensor(recurrent.T.copy()),
        "rnn.bias_ih_l0": torch.tensor(bias),
        "rnn.bias_hh_l0": torch.tensor(np.random.default_rng(1).uniform(-0.5, 0.5, size=3).astype(np.float32)),
        "fc.weight": torch.tensor(dense.weights[0].numpy().T.copy()),
        "fc.bias": torch.tensor(dense.weights[1].numpy()),
    }
    torch.save(state, folder / "rnn.pt")
    (folder / "rnn.yaml").write_text(
        "rnnspec: 1\nname: rnn-port\ninput: {features: 4, seq_len: 6}\nrecurrent: [{cell: simple_rnn, units: 3}]\n"
        "head: {units: 2}\n"
    )
    assert main(["check", str(folder / "rnn.yaml"), "--model", str(folder / "rnn.keras"), "--model",
                 str(folder / "rnn.pt")]) == 1  # fmt: skip
    out = capsys.readouterr().out
    assert "second bias (PyTorch's bias_hh: recurrent_0/recurrent_bias) is not zero" in out
    state["rnn.bias_hh_l0"] = torch.zeros(3)
    torch.save(state, folder / "rnn.pt")
    assert main(["check", str(folder / "rnn.yaml"), "--model", str(folder / "rnn.keras"), "--model",
                 str(folder / "rnn.pt")]) == 0  # fmt: skip


def test_training_parity_of_two_files_rnnspec_can_train(files, capsys):
    """A .keras GRU and its PyTorch state dict trained 5 steps on the same batches: the same loss curve."""
    args = _check(files, str(files["keras"]), str(files["right"]), extra=("--steps", "5", "--json"))
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert [t["check"] for t in report["training"]] == [
        "train 5 steps (rmsprop): loss first vs second",
        "train 5 steps (rmsprop): final weights",
    ]
    assert all(t["passed"] for t in report["training"]) and len(report["batch_loss"]["first"]) == 5


def test_live_models_are_not_trained_and_the_note_says_so():
    backend_or_skip("torch")
    import torch

    from rnnspec import loads_spec
    from rnnspec.testing import compare

    spec = loads_spec(SPEC)
    module = torch.nn.Module()
    module.gru, module.fc = torch.nn.GRU(4, 3, batch_first=True), torch.nn.Linear(3, 2)
    module.forward = lambda x: torch.softmax(module.fc(module.gru(x)[0][:, -1]), -1)
    report = compare("torch", module, spec, steps=3)
    assert report.passed and not report.training
    assert any("training parity not run" in note for note in report.notes)


def test_a_control_character_in_a_model_path_gives_valid_junit_xml_and_html(files, tmp_path: Path, capsys):
    """The --model paths go into the JUnit XML and the page; a control character (XML 1.0 cannot hold it, not even
    as ``&#1;``) is written as a visible escape, and both files parse."""
    import shutil
    import xml.etree.ElementTree as ET
    from html.parser import HTMLParser

    odd = tmp_path / "ri\x01ght\x1b[31m.pt"
    shutil.copy(files["right"], odd)
    xml, page = tmp_path / "r.xml", tmp_path / "r.html"
    assert main(_check(files, str(files["keras"]), str(odd), extra=("--junit", str(xml), "--html", str(page)))) == 0
    out = ET.parse(xml).getroot().find("testsuite").find("system-out").text
    assert "ri\\x01ght\\x1b[31m.pt" in out
    text = page.read_text(encoding="utf-8")
    assert "\x01" not in text and "\x1b" not in text
    found: list[str] = []
    parser = HTMLParser()
    parser.handle_data = found.append  # type: ignore[method-assign]
    parser.feed(text)
    assert any("ri\\x01ght\\x1b[31m.pt" in piece for piece in found)


def test_two_files_with_different_weights_are_said_to_be_so(files, capsys):
    """An untrained twin's state dict: not a conversion mistake but other weights, and the check says both that
    and that it compares rnnspec's builds of the files (it cannot see the user's forward)."""
    import torch

    rng = np.random.default_rng(7)
    state = torch.load(files["right"])
    untrained = {k: torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(v.shape)).astype(np.float32))
                 for k, v in state.items()}  # fmt: skip
    torch.save(untrained, files["dir"] / "untrained.pt")
    assert main(_check(files, str(files["keras"]), str(files["dir"] / "untrained.pt"))) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "these files hold different weights (5 of 5 weights differ" in out  # gru: kernels, bias; dense
    assert "compares what rnnspec builds from each file" in out and "cannot see your own forward()" in out
    assert "none of the known porting mistakes" not in out
