"""A padding id other than 0 (``embedding.padding_idx``, issue 21 item 4): PyTorch's ``nn.Embedding(padding_idx=...)``
with packed sequences (torchtext's ``<pad>`` is 1) means the steps of that id are masked, as ``mask_zero`` masks 0.

The independent reference: a model with ``padding_idx: 1`` on ids ``x`` computes what the ``mask_zero`` model
computes on ``x`` with ids 0 and 1 swapped and the table's rows 0 and 1 swapped (a relabelling of the vocabulary).
Keras has no padding id but 0: the keras backend masks ``ids != padding_idx`` on Keras's own Embedding, so its
outputs must equal numpy's and torch's with the masks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rnnspec
from rnnspec.lang.errors import RnnspecError, SpecError

from .kinds import exported_torch_module
from .parity import backend_or_skip

TOL = 1e-5


def _spec(embedding: dict[str, Any], return_sequences: bool = False) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict(
        {
            "rnnspec": 1.2,
            "name": "pad",
            "input": {"vocab_size": 12},
            "embedding": {"output_dim": 4, **embedding},
            "recurrent": [
                {"cell": "lstm", "units": 3, "return_sequences": True},
                {"cell": "gru", "units": 3, "return_sequences": return_sequences},
            ],
            "head": {"units": 2},
        }
    )


# pre-padded, post-padded, a hole, an all-padding row, and a 0 that is an ordinary id here
X = np.array([[1, 1, 3, 4, 5], [2, 3, 4, 1, 1], [2, 1, 4, 5, 6], [1, 1, 1, 1, 1], [0, 2, 0, 4, 5]])


def _swapped(x: np.ndarray) -> np.ndarray:
    return np.where(x == 0, 1, np.where(x == 1, 0, x))


@pytest.mark.parametrize("return_sequences", [pytest.param(False, marks=pytest.mark.slow), True])  # CI: per step
def test_padding_idx_is_mask_zero_of_the_relabelled_vocabulary(return_sequences):
    spec = _spec({"padding_idx": 1}, return_sequences)
    zero = _spec({"mask_zero": True}, return_sequences)
    weights = rnnspec.initial_weights(spec, seed=3)
    relabelled = {**weights, "embedding/embeddings": weights["embedding/embeddings"][[1, 0, *range(2, 12)]]}
    expected = rnnspec.predict(rnnspec.build(zero, "numpy", weights=relabelled), _swapped(X))
    unmasked = rnnspec.predict(rnnspec.build(_spec({}, return_sequences), "numpy", weights=weights), X)
    for backend in ("numpy", "torch", "keras"):
        backend_or_skip(backend)
        got = rnnspec.predict(rnnspec.build(spec, backend, weights=weights), X)
        assert np.abs(got - expected).max() <= TOL, backend
    assert np.abs(unmasked - expected).max() > 1e-3  # the mask matters on these inputs


def test_padding_idx_zero_is_mask_zero():
    a, b = _spec({"padding_idx": 0}), _spec({"mask_zero": True})
    weights = rnnspec.initial_weights(a, seed=0)
    assert a.embedding.mask_id == b.embedding.mask_id == 0 and a.masked and a.output_masked == b.output_masked
    assert np.array_equal(
        rnnspec.predict(rnnspec.build(a, "numpy", weights=weights), X),
        rnnspec.predict(rnnspec.build(b, "numpy", weights=weights), X),
    )


def test_the_spec_refuses_two_padding_ids_and_an_id_outside_the_vocabulary():
    with pytest.raises(SpecError, match="one padding id only"):
        _spec({"mask_zero": True, "padding_idx": 1})
    with pytest.raises(SpecError, match="padding_idx 12 is not an id of the vocabulary"):
        _spec({"padding_idx": 12})
    with pytest.raises(SpecError, match="padding_idx"):
        _spec({"padding_idx": -1})


def test_the_keras_artifact_keeps_the_padding_id(tmp_path: Path):
    """Keras's config cannot say it; rnnspec's artifact restores it from the spec inside when it loads."""
    backend_or_skip("keras")
    spec = _spec({"padding_idx": 1}, True)
    weights = rnnspec.initial_weights(spec, seed=0)
    keras_backend = rnnspec.get_backend("keras")
    (path,) = keras_backend.save_artifact(rnnspec.build(spec, "keras", weights=weights), tmp_path)
    expected = rnnspec.predict(rnnspec.build(spec, "numpy", weights=weights), X)
    assert np.abs(rnnspec.predict(keras_backend.load_artifact(path), X) - expected).max() <= TOL


def test_a_plain_keras_export_is_refused_with_the_alternatives(tmp_path: Path):
    backend_or_skip("keras")
    from rnnspec_backends.keras.export import export_keras

    spec = _spec({"padding_idx": 1})
    with pytest.raises(RnnspecError, match="masks id 0 only") as info:
        export_keras(spec, rnnspec.initial_weights(spec, seed=0), tmp_path / "m.keras")
    assert "export to onnx or torch" in str(info.value) and not (tmp_path / "m.keras").exists()


def test_the_plain_torch_and_onnx_exports_mask_the_padding_id(tmp_path: Path):
    backend_or_skip("torch")
    spec = _spec({"padding_idx": 1}, True)
    weights = rnnspec.initial_weights(spec, seed=0)
    expected = rnnspec.predict(rnnspec.build(spec, "numpy", weights=weights), X)
    module, _ = exported_torch_module(spec, weights, tmp_path, "pad_model")
    assert "mask = h != 1" in (tmp_path / "model.py").read_text()
    import torch

    with torch.no_grad():
        got = module.load()(torch.as_tensor(X)).numpy()
    assert np.abs(got - expected).max() <= TOL
    ort = pytest.importorskip("onnxruntime")
    from rnnspec.runtime.exporting import export

    paths = export(spec, "onnx", tmp_path / "m.onnx", weights=weights)
    session = ort.InferenceSession(str(paths[0]), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: X.astype(np.int64)})
    assert np.abs(got - expected).max() <= TOL
