"""``head: {units: N, activation: log_softmax}``: the output Dense layer of PyTorch's taggers (``F.log_softmax``).

References: the formula (``z - logsumexp(z)`` of the same model's logits, a linear head), Keras's own
``Dense(activation='log_softmax')`` (import) and training (``model.fit`` with ``SparseCategoricalCrossentropy
(from_logits=True)``, Keras computing ``log_softmax`` of the log-probabilities), and PyTorch's ``F.nll_loss`` of the
outputs for the loss the torch trainer reports. The loss checks refuse what is not exact, with the reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import rnnspec
from rnnspec.cli import main
from rnnspec.core.weights import save_weights_file
from rnnspec.interop.proof import hard_inputs
from rnnspec.lang.errors import SpecError
from tests.parity import backend_or_skip, random_weights

torch = pytest.importorskip("torch", reason="needs the torch extra")

TOL = 1e-5
BASE = {
    "rnnspec": 1.2,
    "name": "tagger",
    "input": {"vocab_size": 20},
    "embedding": {"output_dim": 6, "mask_zero": True},
    "recurrent": [{"cell": "gru", "units": 5, "return_sequences": True}],
}


def _spec(head=None, **more) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict({**BASE, "head": head or {"units": 4, "activation": "log_softmax"}, **more})


def _expected(x: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
    """log_softmax of the same model's logits (a linear head), by the formula."""
    logits = rnnspec.predict(rnnspec.build(_spec({"units": 4}), "numpy", weights=weights), x).astype(np.float64)
    top = logits.max(axis=-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("backend", ["numpy", "torch", "keras"])
def test_outputs_are_log_softmax_of_the_logits_with_masks(backend):
    backend_or_skip(backend)
    spec = _spec()
    weights = random_weights(spec, 0)
    x = hard_inputs(spec)  # pre-/post-padded, a hole, fully padded, length 1
    got = rnnspec.predict(rnnspec.build(spec, backend, weights=weights), x)
    assert got.shape == (8, 12, 4)
    assert np.abs(got - _expected(x, weights)).max() <= TOL


@pytest.mark.parametrize("fmt", ["torch", "onnx"])
def test_exports_compute_it(tmp_path: Path, fmt, capsys):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    spec = _spec()
    weights = random_weights(spec, 0)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec.to_dict()))
    save_weights_file(weights, tmp_path / "w.safetensors", spec)
    out = tmp_path / ("m.py" if fmt == "torch" else "m.onnx")
    assert main(["export", str(tmp_path / "s.yaml"), "--weights", str(tmp_path / "w.safetensors"), "-f", fmt,
                 "-o", str(out)]) == 0  # fmt: skip
    x = hard_inputs(spec)
    if fmt == "torch":
        import runpy

        from safetensors.torch import load_file

        model = runpy.run_path(str(out))["Model"]().eval()
        model.load_state_dict(load_file(tmp_path / "m.safetensors"))
        with torch.no_grad():
            got = model(torch.as_tensor(x)).numpy()
        assert "log_softmax" in out.read_text()
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert np.abs(got - _expected(x, weights)).max() <= TOL


def test_a_keras_dense_with_log_softmax_imports(tmp_path: Path):
    backend_or_skip("keras")
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None,), dtype="int32"), L.Embedding(20, 6, mask_zero=True),
                              L.GRU(5, return_sequences=True), L.Dense(4, activation="log_softmax")])  # fmt: skip
    model.save(tmp_path / "tagger.keras")
    x = hard_inputs(_spec())
    expected = np.asarray(model.predict(x, verbose=0))
    assert main(["import", str(tmp_path / "tagger.keras"), "-o", str(tmp_path / "out")]) == 0
    spec = rnnspec.load_spec(tmp_path / "out" / "spec.yaml")
    assert spec.output_layer.activation == "log_softmax"
    weights = rnnspec.load_weights(tmp_path / "out" / "weights.safetensors", spec=spec)
    got = rnnspec.predict(rnnspec.build(spec, "numpy", weights=weights), x)
    assert np.abs(got - expected).max() <= TOL


# -- losses: NLLLoss is a categorical loss with from_logits; the rest is refused with the reason ----------------------


def test_nll_loss_is_a_categorical_loss_with_from_logits():
    for name in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
        spec = _spec(training={"loss": {"name": name, "from_logits": True}})
        assert spec.output_activation == "log_softmax"


@pytest.mark.parametrize(
    "loss, words",
    [
        ("sparse_categorical_crossentropy", ["clipping", "from_logits: true", "NLLLoss"]),
        ("categorical_crossentropy", ["clipping", "from_logits: true"]),
        ("binary_crossentropy", ["exclusive classes", "NLLLoss"]),
        ({"name": "binary_crossentropy", "from_logits": True}, ["exclusive classes"]),
    ],
)
def test_inexact_losses_are_refused_with_the_reason(loss, words):
    with pytest.raises(SpecError) as info:
        _spec(training={"loss": loss})
    text = info.value.render()
    for word in words:
        assert word in text, (word, text)


def test_one_unit_and_hidden_log_softmax_are_refused():
    with pytest.raises(SpecError, match=r"always 0\.0"):
        _spec({"units": 1, "activation": "log_softmax"})
    with pytest.raises(SpecError, match="log_softmax belongs on the output layer only"):
        _spec([{"units": 6, "activation": "log_softmax"}, {"units": 4}])


@pytest.mark.parametrize("head", ["log_softmax", "tanh"])
def test_the_torch_trainer_takes_the_outputs_as_the_logits(head):
    """One full batch: the loss the torch loop reports is the cross-entropy of the outputs themselves read as
    logits, as Keras's ``from_logits`` reads them: F.nll_loss of log_softmax outputs (a PyTorch tagger's loss), and
    F.cross_entropy of a tanh head's outputs (not of the logits behind the tanh), over the real steps."""
    spec = _spec({"units": 4, "activation": head},
                 training={"loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
                           "optimizer": "sgd", "batch_size": 8, "shuffle": False})  # fmt: skip
    x = hard_inputs(spec)
    y = np.random.default_rng(1).integers(0, 4, size=x.shape)
    model = rnnspec.build(spec, "torch", weights=random_weights(spec, 0))
    out = torch.as_tensor(rnnspec.predict(model, x), dtype=torch.float64)
    history = rnnspec.fit(model, x, y, seed=0)
    real = torch.as_tensor(x != 0)
    if head == "log_softmax":
        expected = torch.nn.functional.nll_loss(out[real], torch.as_tensor(y)[real])
    else:
        expected = torch.nn.functional.cross_entropy(out[real], torch.as_tensor(y)[real])
    assert abs(history["batch_loss"][0] - float(expected)) <= 1e-5


def test_training_matches_keras_step_for_step():
    """model.fit (Keras: log_softmax of the log-probabilities under from_logits) and the torch loop, Adam."""
    backend_or_skip("keras")
    spec = _spec(training={"loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
                           "optimizer": "adam", "batch_size": 4, "epochs": 2, "shuffle": True})  # fmt: skip
    x = hard_inputs(spec)
    y = np.random.default_rng(1).integers(0, 4, size=x.shape)
    result = {}
    for backend in ("torch", "keras"):
        model = rnnspec.build(spec, backend, seed=0)
        result[backend] = (rnnspec.fit(model, x, y, seed=0), rnnspec.get_weights(model))
    (th, tw), (kh, kw) = result["torch"], result["keras"]
    tl, kl = np.array(th["batch_loss"]), np.array(kh["batch_loss"])
    assert len(tl) == len(kl) == 4
    assert np.max(np.abs(tl - kl) / np.abs(kl)) <= 1e-4  # as tests/test_activation_layers.py's parity
    assert max(np.abs(tw[k] - kw[k]).max() for k in tw) <= 1e-4
