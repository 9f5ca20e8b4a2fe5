"""``stateful: true`` layers exported: the states a stateful layer carries from batch to batch, in the exported file.

The reference is Keras itself: a hand-written Keras model with ``stateful=True`` layers and a ``batch_shape`` Input,
whose ``predict_on_batch`` over three consecutive batches (masked steps, a fully padded row) gives the expected
outputs, with the same weights. The ONNX graph takes each stateful layer's states as inputs (``LAYER.h_0``, an
LSTM's ``LAYER.c_0``: zeros for the first batch) and gives the final ones as outputs (``LAYER.h_n``, ``LAYER.c_n``),
which the caller feeds to the next batch, as ONNX Runtime users carry recurrent states.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from .parity import random_weights
from .test_stateful import CASES, B, _batches, _case, _reset

TOL = 1e-5
"""float32 outputs, absolute."""


def _keras_model(L: Any, case: str, seed: int = 1) -> tuple[Any, Any, dict[str, np.ndarray], tuple[int, ...]]:
    from rnnspec_backends.keras.runtime import keras

    import rnnspec

    spec, layers, sample = _case(L, case)
    dtype = "int32" if spec.input.vocab_size is not None else "float32"
    model = keras.Sequential([keras.Input((None, *sample[1:]), batch_size=B, dtype=dtype), *layers])
    weights = random_weights(spec, seed)
    names = rnnspec.weight_shapes(spec)
    assert [tuple(v.shape) for v in model.weights] == list(names.values())
    model.set_weights([weights[name] for name in names])
    return spec, model, weights, sample


@pytest.mark.parametrize("case", CASES)
def test_onnx_export_carries_the_states_as_inputs_and_outputs(L, case: str, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from rnnspec_backends.onnx.export import export_onnx

    spec, hand, weights, sample = _keras_model(L, case)
    (path,) = export_onnx(spec, weights, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    stateful = [name for name, layer in spec.stack() if getattr(layer, "stateful", False)]
    inputs = {i.name: i.shape for i in session.get_inputs()}
    expected_states = [f"{n}.{s}_0" for n in stateful for s in (["h", "c"] if case == "stock-lstm" else ["h"])]
    assert list(inputs) == ["x", *expected_states]
    for name in expected_states:
        layer = dict(spec.stack())[name.split(".")[0]]
        assert inputs[name] == [layer.directions, B, layer.units]
    xs = _batches(spec, sample)
    _reset(hand)
    expected = [np.asarray(hand.predict_on_batch(x)) for x in xs]
    dtype = np.int64 if spec.input.vocab_size is not None else np.float32
    for _run in range(2):  # zeros again: Keras's reset_state()
        carried = {name: np.zeros(inputs[name], np.float32) for name in expected_states}
        for k, x in enumerate(xs):
            out = dict(zip([o.name for o in session.get_outputs()],
                           session.run(None, {"x": x.astype(dtype), **carried}), strict=True))  # fmt: skip
            assert np.abs(out["y"] - expected[k]).max() <= TOL, (case, k)
            carried = {name: out[name[: -len("_0")] + "_n"] for name in expected_states}
        _reset(hand)


@pytest.mark.parametrize("fmt", ["onnx", "torch"])
def test_the_export_command_proves_a_stateful_export_over_consecutive_batches(L, fmt: str, tmp_path, capsys):
    """``rnnspec export`` runs the exported model over the hard inputs in consecutive batches, carrying the states,
    and compares it with rnnspec's stateful builds (which equal Keras: tests/test_stateful.py)."""
    pytest.importorskip("onnxruntime" if fmt == "onnx" else "torch")
    import rnnspec
    from rnnspec.cli import main
    from rnnspec.core.emit import yaml_document

    spec, _, weights, _ = _keras_model(L, "masked-bidirectional")
    (tmp_path / "spec.yaml").write_text(yaml_document(spec.to_dict()))
    rnnspec.save_weights(weights, tmp_path / "w.safetensors", spec)
    argv = ["export", str(tmp_path / "spec.yaml"), "--weights", str(tmp_path / "w.safetensors"), "-f", fmt]
    target = tmp_path / ("m.onnx" if fmt == "onnx" else "m.py")
    code = main([*argv, "-o", str(target)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "DIFFERENT" not in out and " ok" in out and target.is_file()


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("case", CASES)
def test_torch_export_carries_the_states_from_batch_to_batch(L, case: str, tmp_path):
    """The exported model.py predicts Keras's three consecutive batches, again after ``reset_states()``, eager and
    under torch.jit.script; a batch of another size is refused with the reason."""
    torch = pytest.importorskip("torch")

    from .kinds import exported_torch_model

    spec, hand, weights, sample = _keras_model(L, case)
    model = exported_torch_model(spec, weights, tmp_path, f"stateful_{case.replace('-', '_')}")
    xs = _batches(spec, sample)
    _reset(hand)
    expected = [np.asarray(hand.predict_on_batch(x)) for x in xs]
    dtype = torch.int64 if spec.input.vocab_size is not None else torch.float32
    for runner in (model, torch.jit.script(model)):
        for _run in range(2):
            runner.reset_states()
            with torch.no_grad():
                for k, x in enumerate(xs):
                    got = runner(torch.as_tensor(x, dtype=dtype)).numpy()
                    assert np.abs(got - expected[k]).max() <= TOL, (case, k)
    with pytest.raises(Exception, match="carries 4 rows of states from batch to batch"):
        model(torch.as_tensor(xs[0][:2], dtype=dtype))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("fmt", ["onnx", "torch"])
def test_a_fully_padded_row_of_a_last_output_layer_outputs_zeros_in_a_later_batch(L, fmt: str, tmp_path):
    """Masking → stateful LSTM (last output) → Dense: a fully padded row in the third batch outputs what Keras does
    (the layer's zeros, not the states it carries), while its states carry on unchanged."""
    from rnnspec_backends.keras.runtime import keras

    import rnnspec

    spec = rnnspec.spec_from_dict({"rnnspec": 1.2, "name": "last", "head": {"units": 2},
                                   "input": {"features": 3, "batch_size": B, "mask_value": 0.0},
                                   "recurrent": [{"cell": "lstm", "units": 4, "stateful": True}]})  # fmt: skip
    hand = keras.Sequential([keras.Input((None, 3), batch_size=B), L.Masking(0.0), L.LSTM(4, stateful=True),
                             L.Dense(2)])  # fmt: skip
    weights = random_weights(spec, 3)
    hand.set_weights([weights[name] for name in rnnspec.weight_shapes(spec)])
    xs = _batches(spec, (6, 3))
    assert not xs[2][2].any()  # the fully padded row, in the third batch
    _reset(hand)
    expected = [np.asarray(hand.predict_on_batch(x)) for x in xs]
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        from rnnspec_backends.onnx.export import export_onnx
        from rnnspec_backends.onnx.runner import run_file

        run = run_file(export_onnx(spec, weights, tmp_path / "m.onnx"))
    else:
        pytest.importorskip("torch")
        from rnnspec_backends.torch.export import export_torch
        from rnnspec_backends.torch.runner import run_file

        run = run_file(export_torch(spec, weights, tmp_path / "m.py"))
    got = run(np.concatenate(xs))
    assert np.abs(got - np.concatenate(expected)).max() <= TOL
