"""Importing Keras models built by hand: each saved as .keras and .h5, imported, compiled to torch and numpy.

The reference outputs are Keras's own (the original model called on the inputs). Weights are random
with non-zero biases, and the inputs include pre- and post-padded, holed, fully padded and length-1 rows.
Keras 2 files (names with ``:0``, ``time_major``, the single-bias GRU with no ``reset_after`` key,
CuDNNLSTM/CuDNNGRU weight layouts) are written with h5py the way Keras 2 wrote them.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rnnspec_backends.keras.model", reason="the keras backend needs the keras extra")
pytest.importorskip("torch")
import h5py
import keras
import yaml

import rnnspec
from rnnspec.cli import main
from rnnspec.interop.keras_import import UnsupportedModelError
from rnnspec.interop.proof import hard_inputs
from rnnspec.runtime.importing import import_model

L = keras.layers
TOL = 1e-5


def _ids(t: int | None) -> keras.KerasTensor:
    return keras.Input((t,), dtype="int32")


def _features(t: int | None, f: int) -> keras.KerasTensor:
    return keras.Input((t, f))


def _m_imdb() -> keras.Model:
    return keras.Sequential([_ids(9), L.Embedding(30, 6, mask_zero=True), L.LSTM(8), L.Dense(1, "sigmoid")])


def _m_bi_stack() -> keras.Model:
    return keras.Sequential(
        [
            _ids(None),
            L.Embedding(25, 5, mask_zero=True),
            L.Bidirectional(L.LSTM(6, return_sequences=True)),
            L.Bidirectional(L.GRU(4), merge_mode="sum"),
            L.Dense(3, "softmax"),
        ]
    )


def _m_dropouts() -> keras.Model:
    return keras.Sequential(
        [
            _ids(10),
            L.Embedding(40, 6, mask_zero=True),
            L.Bidirectional(L.GRU(5, return_sequences=True), merge_mode="mul"),
            L.SpatialDropout1D(0.2),
            L.GRU(4, reset_after=False),
            L.Dropout(0.3),
            L.Dense(8, "relu"),
            L.Dropout(0.1),
            L.Dense(2),
        ]
    )


def _m_masked_features() -> keras.Model:
    return keras.Sequential(
        [
            _features(None, 3),
            L.Masking(0.0),
            L.SimpleRNN(6, activation="relu", return_sequences=True),
            L.TimeDistributed(L.Dense(3)),
        ]
    )


def _m_backwards() -> keras.Model:
    return keras.Sequential(
        [
            _features(8, 4),
            L.LSTM(5, return_sequences=True, go_backwards=True),
            L.Bidirectional(L.LSTM(3), merge_mode="ave"),
            L.Dense(1),
        ]
    )


def _m_tagger() -> keras.Model:
    return keras.Sequential(
        [
            _ids(None),
            L.Embedding(50, 8, mask_zero=True),
            L.GRU(6, return_sequences=True),
            L.Dense(4, "gelu"),
            L.Dense(5, "softmax"),
        ]
    )


def _m_functional() -> keras.Model:
    inputs = keras.Input((7,), dtype="int32")
    x = L.Embedding(20, 4, mask_zero=True)(inputs)
    x = L.GRU(4)(x)
    return keras.Model(inputs, L.Dense(1)(x), name="functional_gru")


def _m_no_bias() -> keras.Model:
    return keras.Sequential([_features(6, 3), L.SimpleRNN(4, use_bias=False), L.Dense(2, "tanh", use_bias=False)])


def _m_activations() -> keras.Model:
    return keras.Sequential(
        [
            _features(None, 3),
            L.LSTM(5, activation="relu", recurrent_activation="hard_sigmoid", unit_forget_bias=False),
            L.Dense(3, "softmax"),
        ]
    )


def _m_dropout_stack() -> keras.Model:
    return keras.Sequential(
        [
            _ids(12),
            L.Embedding(60, 8),
            L.Dropout(0.2),
            L.LSTM(6, return_sequences=True, dropout=0.2, recurrent_dropout=0.1),
            L.LSTM(3),
            L.Dense(1),
        ]
    )


def _m_bi_simple_masked() -> keras.Model:
    return keras.Sequential(
        [_features(10, 2), L.Masking(-1.0), L.Bidirectional(L.SimpleRNN(4, return_sequences=True)), L.Dense(1)]
    )


MODELS = {
    "imdb_lstm": _m_imdb,
    "bidirectional_stack": _m_bi_stack,
    "dropout_layers_reset_after_false": _m_dropouts,
    "masked_features_per_step": _m_masked_features,
    "go_backwards_ave": _m_backwards,
    "tagger_gelu": _m_tagger,
    "functional_chain": _m_functional,
    "no_bias": _m_no_bias,
    "relu_hard_sigmoid": _m_activations,
    "dropout_stack": _m_dropout_stack,
    "bidirectional_simple_rnn_masked": _m_bi_simple_masked,
}


def _randomize(model: keras.Model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        scale = 1.0 / np.sqrt(shape[0]) if len(shape) == 2 and "embeddings" not in w.path else 0.4
        w.assign(rng.normal(0.0, scale, size=shape).astype("float32"))


def _inputs(spec: rnnspec.ModelSpec) -> np.ndarray:
    return hard_inputs(spec, seed=1, batch=6, time=11)


def _keras_out(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x, training=False))


@pytest.fixture(scope="module", params=sorted(MODELS))
def saved(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, keras.Model, Path]:
    model = MODELS[request.param]()
    _randomize(model)
    folder = tmp_path_factory.mktemp(request.param)
    model.save(folder / "model.keras")
    model.save(folder / "model.h5")
    return request.param, model, folder


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_imported_model_predicts_what_keras_predicts(saved: tuple[str, keras.Model, Path], fmt: str) -> None:
    _, model, folder = saved
    spec, weights = import_model(folder / f"model.{fmt}")
    x = _inputs(spec)
    expected = _keras_out(model, x)
    for backend in ("numpy", "torch"):
        built = rnnspec.build(spec, backend, weights=weights)
        got = rnnspec.predict(built, x)
        assert got.shape == expected.shape
        assert np.max(np.abs(got - expected)) <= TOL, backend


def test_imported_spec_keeps_keras_layer_names(tmp_path: Path) -> None:
    model = keras.Sequential(
        [
            _ids(5),
            L.Embedding(9, 3, name="words"),
            L.LSTM(4, name="my_first", return_sequences=True),
            L.LSTM(2, name="my_second"),
            L.Dense(1, name="score"),
        ]
    )
    model.save(tmp_path / "named.keras")
    spec, weights = import_model(tmp_path / "named.keras")
    assert spec.layer_names() == ["words", "my_first", "my_second", "score"]
    assert "my_second/recurrent_kernel" in weights


def test_seq_len_and_features_from_the_input_layer(tmp_path: Path) -> None:
    _m_backwards().save(tmp_path / "m.keras")
    spec, _ = import_model(tmp_path / "m.keras")
    assert (spec.input.seq_len, spec.input.features) == (8, 4)
    assert spec.cells[0].go_backwards and spec.cells[1].merge_mode == "ave"


# -- Keras 2 files, written the way Keras 2 wrote them -----------------------------------------------


def _keras2_h5(path: Path, layers: list[dict], weights: dict[str, list[tuple[str, np.ndarray]]]) -> None:
    """A Keras 2.15 model file: model_config without `module`, TF variable names with `:0`."""
    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [layer["config"]["name"].encode() for layer in layers[1:]]
        for layer in layers[1:]:
            name = layer["config"]["name"]
            lg = g.create_group(name)
            pairs = weights.get(name, [])
            lg.attrs["weight_names"] = [n.encode() for n, _ in pairs]
            for wname, value in pairs:
                lg.create_dataset(wname, data=value)


def _rnn2(cls: str, name: str, units: int, **extra: object) -> dict:
    cfg = {"name": name, "units": units, "return_sequences": False, "return_state": False, "go_backwards": False,
           "stateful": False, "unroll": False, "time_major": False, "activation": "tanh", "use_bias": True,
           "dropout": 0.0, "recurrent_dropout": 0.0, "implementation": 2, **extra}  # fmt: skip
    if cls != "SimpleRNN":
        cfg.setdefault("recurrent_activation", "sigmoid")
    return {"class_name": cls, "config": cfg}


def _input2(shape: list, dtype: str = "float32") -> dict:
    return {"class_name": "InputLayer", "config": {"batch_input_shape": shape, "dtype": dtype, "name": "input_1"}}


def _dense2(name: str, units: int, activation: str = "linear") -> dict:
    return {"class_name": "Dense", "config": {"name": name, "units": units, "activation": activation, "use_bias": True}}


def _weights_of(layer: keras.layers.Layer, prefix: str) -> list[tuple[str, np.ndarray]]:
    leaves = ["kernel", "recurrent_kernel", "bias"]
    return [(f"{prefix}/{leaves[i] if len(layer.weights) > 2 else ['kernel', 'bias'][i]}:0", np.asarray(w))
            for i, w in enumerate(layer.weights)]  # fmt: skip


def test_keras2_h5_with_time_major_and_variable_names(tmp_path: Path) -> None:
    ref = keras.Sequential([_features(7, 3), L.LSTM(5, return_sequences=True), L.GRU(4, reset_after=False),
                            L.Dense(2)])  # fmt: skip
    _randomize(ref, 3)
    lstm, gru, dense = ref.layers
    layers = [_input2([None, 7, 3]), _rnn2("LSTM", "lstm", 5, return_sequences=True, unit_forget_bias=True),
              _rnn2("GRU", "gru", 4), _dense2("dense", 2)]  # fmt: skip
    # a Keras <= 2.2 GRU: no reset_after key, one (3u,) bias
    weights = {
        "lstm": _weights_of(lstm, "lstm/lstm_cell"),
        "gru": _weights_of(gru, "gru/gru_cell"),
        "dense": _weights_of(dense, "dense"),
    }
    _keras2_h5(tmp_path / "old.h5", layers, weights)
    spec, w = import_model(tmp_path / "old.h5")
    assert spec.cells[1].reset_after is False
    x = np.random.default_rng(0).normal(size=(4, 7, 3)).astype("float32")
    got = rnnspec.predict(rnnspec.build(spec, "torch", weights=w), x)
    assert np.max(np.abs(got - _keras_out(ref, x))) <= TOL


def _to_cudnn_kernel(k: np.ndarray, gates: int) -> np.ndarray:
    """Keras 2's inverse transform (``_convert_rnn_weights`` towards CuDNN): per gate ``k.T.reshape(shape, 'C')``."""
    return np.hstack([g.T.reshape(g.shape, order="C") for g in np.hsplit(k, gates)])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_keras2_cudnn_layers_are_converted(tmp_path: Path, cell: str) -> None:
    units, gates = 4, 4 if cell == "lstm" else 3
    layer = L.LSTM(units) if cell == "lstm" else L.GRU(units)
    ref = keras.Sequential([_features(6, 3), layer, L.Dense(1)])
    _randomize(ref, 5)
    kernel, recurrent, bias = (np.asarray(w) for w in ref.layers[0].weights)
    recurrent_cudnn = np.hstack([g.T for g in np.hsplit(recurrent, gates)])
    if cell == "lstm":  # split the one bias in two halves that add back up
        half = np.random.default_rng(1).normal(size=bias.shape).astype("float32")
        bias_cudnn = np.concatenate([half, bias - half])
    else:
        bias_cudnn = bias.reshape(-1)
    cls = "CuDNNLSTM" if cell == "lstm" else "CuDNNGRU"
    cfg = {"name": "cudnn", "units": units, "return_sequences": False, "return_state": False, "go_backwards": False,
           "stateful": False}  # fmt: skip
    layers = [_input2([None, 6, 3]), {"class_name": cls, "config": cfg}, _dense2("dense", 1)]
    weights = {
        "cudnn": [
            ("cudnn/kernel:0", _to_cudnn_kernel(kernel, gates)),
            ("cudnn/recurrent_kernel:0", recurrent_cudnn),
            ("cudnn/bias:0", bias_cudnn),
        ],
        "dense": _weights_of(ref.layers[1], "dense"),
    }
    _keras2_h5(tmp_path / "cudnn.h5", layers, weights)
    spec, w = import_model(tmp_path / "cudnn.h5")
    x = np.random.default_rng(2).normal(size=(3, 6, 3)).astype("float32")
    got = rnnspec.predict(rnnspec.build(spec, "numpy", weights=w), x)
    assert np.max(np.abs(got - _keras_out(ref, x))) <= TOL


def test_keras2_hard_sigmoid_is_refused_with_the_reason(tmp_path: Path) -> None:
    layers = [_input2([None, 5, 2]), _rnn2("LSTM", "lstm", 3, recurrent_activation="hard_sigmoid"),
              _dense2("dense", 1)]  # fmt: skip
    ref = keras.Sequential([_features(5, 2), L.LSTM(3), L.Dense(1)])
    weights = {"lstm": _weights_of(ref.layers[0], "lstm/lstm_cell"), "dense": _weights_of(ref.layers[1], "dense")}
    _keras2_h5(tmp_path / "hs.h5", layers, weights)
    with pytest.raises(UnsupportedModelError, match=r"0\.2·x \+ 0\.5"):
        import_model(tmp_path / "hs.h5")


# -- refusals ---------------------------------------------------------------------------------------------


def test_unsupported_layers_are_all_listed_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    inputs = keras.Input(batch_shape=(2, 10), dtype="int32")
    x = L.Embedding(20, 4)(inputs)
    x = L.UpSampling1D(2)(x)
    x = L.Lambda(lambda t: t * 2.0)(x)
    x = L.Cropping1D(1)(x)
    x = L.LSTM(4)(x)
    model = keras.Model(inputs, L.Dense(1)(x))
    model.save(tmp_path / "bad.keras")
    out = tmp_path / "out"
    code = main(["import", str(tmp_path / "bad.keras"), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert "UpSampling1D" in err and "Lambda" in err and "Cropping1D" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_two_inputs_and_return_state_are_refused(tmp_path: Path) -> None:
    a, b = keras.Input((5, 2)), keras.Input((5, 2))
    merged = L.Concatenate()([a, b])
    seq, _h, _c = L.LSTM(3, return_state=True)(merged)
    keras.Model([a, b], L.Dense(1)(seq)).save(tmp_path / "two.keras")
    with pytest.raises(UnsupportedModelError) as info:
        import_model(tmp_path / "two.keras")
    message = str(info.value)
    assert "the model has 2 inputs" in message  # the cause alone, not its symptoms (Concatenate, return_state)
    assert "Concatenate" not in message and "'lstm'" not in message


def test_external_links_in_the_h5_are_refused(tmp_path: Path) -> None:
    model = _m_imdb()
    model.save(tmp_path / "m.h5")
    name = model.layers[1].name
    with h5py.File(tmp_path / "m.h5", "a") as f:
        del f[f"model_weights/{name}"]
        f[f"model_weights/{name}"] = h5py.ExternalLink("/etc/passwd", "/")
    with pytest.raises(rnnspec.RnnspecError, match="ExternalLink"):
        import_model(tmp_path / "m.h5")


def test_a_weights_only_h5_asks_for_the_architecture(tmp_path: Path) -> None:
    _m_imdb().save_weights(tmp_path / "m.weights.h5")
    with pytest.raises(rnnspec.RnnspecError, match=r"model\.save\('model\.keras'\)"):
        import_model(tmp_path / "m.weights.h5")


# -- the CLI: two commands from a Keras file to PyTorch ----------------------------------------------------


def test_import_then_build_torch_predicts_the_original(tmp_path: Path, capsys) -> None:
    model = _m_bi_stack()
    _randomize(model, 7)
    model.save(tmp_path / "tutorial.keras")
    out = tmp_path / "imported"
    assert main(["import", str(tmp_path / "tutorial.keras"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "original Keras model vs rnnspec torch" in printed and "ok" in printed
    spec = rnnspec.load_spec(out / "spec.yaml")
    x = hard_inputs(spec, seed=4)
    torch_model = rnnspec.build(out / "spec.yaml", "torch", weights=out / "weights.safetensors")
    assert np.max(np.abs(rnnspec.predict(torch_model, x) - _keras_out(model, x))) <= TOL
    # a second import into the same folder asks first
    assert main(["import", str(tmp_path / "tutorial.keras"), "-o", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_convert_reads_a_plain_keras_file(tmp_path: Path) -> None:
    model = _m_imdb()
    _randomize(model, 2)
    model.save(tmp_path / "plain.keras")
    assert main(["convert", str(tmp_path / "plain.keras"), "--to", "torch", "-o", str(tmp_path / "t")]) == 0
    written = sorted(p.name for p in (tmp_path / "t").iterdir())
    assert any(name.endswith(".torch.safetensors") for name in written)


def test_spec_renames_the_layers_and_must_match(tmp_path: Path) -> None:
    model = _m_imdb()
    model.save(tmp_path / "m.keras")
    spec = rnnspec.loads_spec(
        "rnnspec: 1.1\nname: mine\ninput: {vocab_size: 30, seq_len: 9}\nembedding: {output_dim: 6, mask_zero: true}\n"
        "recurrent: [{cell: lstm, units: 8}]\nhead: {units: 1, activation: sigmoid}\n"
    )
    found, weights = import_model(tmp_path / "m.keras", spec)
    assert found is spec and "recurrent_0/kernel" in weights
    wrong = rnnspec.loads_spec(
        "rnnspec: 1.1\nname: w\ninput: {vocab_size: 30, seq_len: 9}\nembedding: {output_dim: 6, mask_zero: true}\n"
        "recurrent: [{cell: gru, units: 8}]\nhead: {units: 1, activation: sigmoid}\n"
    )
    with pytest.raises(rnnspec.RnnspecError, match="LSTM in the file"):
        import_model(tmp_path / "m.keras", wrong)


def test_get_weights_of_a_live_keras_model_given_its_spec() -> None:
    model = _m_dropouts()
    _randomize(model, 9)
    spec, _ = import_model_from_live(model)
    weights = rnnspec.get_weights(model, spec=spec)
    x = hard_inputs(spec, seed=5)
    got = rnnspec.predict(rnnspec.build(spec, "torch", weights=weights), x)
    assert np.max(np.abs(got - _keras_out(model, x))) <= TOL


def import_model_from_live(model: keras.Model) -> tuple[rnnspec.ModelSpec, dict]:
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"rnnspec-live-{os.getpid()}"
    folder.mkdir(exist_ok=True)
    path = folder / "live.keras"
    model.save(path)
    try:
        return import_model(path)
    finally:
        path.unlink()


def test_keras_file_members_are_read_without_executing(tmp_path: Path) -> None:
    _m_imdb().save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        config = json.loads(zf.read("config.json"))
    config["config"]["layers"][2]["module"] = "os"
    config["config"]["layers"][2]["class_name"] = "system"
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "evil.keras", "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    with pytest.raises(UnsupportedModelError, match="no system layer") as info:
        import_model(tmp_path / "evil.keras")
    assert "modules outside Keras (os)" in str(info.value)


def test_importing_a_keras_file_imports_no_framework(tmp_path: Path) -> None:
    import subprocess
    import sys

    _m_dropouts().save(tmp_path / "m.keras")
    _m_dropouts().save(tmp_path / "m.h5")
    script = (
        "import sys\nfrom rnnspec.runtime.importing import import_model\n"
        f"for f in ({str(tmp_path / 'm.keras')!r}, {str(tmp_path / 'm.h5')!r}):\n"
        "    spec, weights = import_model(f)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'torch', 'jax')))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_keras2_functional_bidirectional_h5(tmp_path: Path) -> None:
    ref = keras.Sequential([_ids(8), L.Embedding(30, 5, mask_zero=True), L.Bidirectional(L.LSTM(4)),
                            L.Dense(1, "sigmoid")])  # fmt: skip
    _randomize(ref, 11)
    emb, bi, dense = ref.layers
    inner = _rnn2("LSTM", "lstm", 4, unit_forget_bias=True)
    layers = [
        {"class_name": "InputLayer", "name": "input_1",
         "config": {"batch_input_shape": [None, 8], "dtype": "int32", "name": "input_1"}, "inbound_nodes": []},
        {"class_name": "Embedding", "name": "embedding", "inbound_nodes": [[["input_1", 0, 0, {}]]],
         "config": {"name": "embedding", "input_dim": 30, "output_dim": 5, "mask_zero": True, "input_length": 8}},
        {"class_name": "Bidirectional", "name": "bidirectional", "inbound_nodes": [[["embedding", 0, 0, {}]]],
         "config": {"name": "bidirectional", "layer": inner, "merge_mode": "concat"}},
        {**_dense2("dense", 1, "sigmoid"), "name": "dense", "inbound_nodes": [[["bidirectional", 0, 0, {}]]]},
    ]  # fmt: skip
    config = {"class_name": "Functional", "config": {"name": "model", "layers": layers,
              "input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]]}}  # fmt: skip
    leaves = ["kernel", "recurrent_kernel", "bias"]
    directions = ["forward"] * 3 + ["backward"] * 3
    bi_weights = [
        (f"bidirectional/{d}_lstm/lstm_cell/{leaves[i % 3]}:0", np.asarray(w))
        for i, (d, w) in enumerate(zip(directions, bi.weights, strict=True))
    ]
    with h5py.File(tmp_path / "bi.h5", "w") as f:
        f.attrs["keras_version"] = "2.11.0"
        f.attrs["model_config"] = json.dumps(config)
        g = f.create_group("model_weights")
        for name, pairs in (("embedding", [("embedding/embeddings:0", np.asarray(emb.weights[0]))]),
                            ("bidirectional", bi_weights), ("dense", _weights_of(dense, "dense"))):  # fmt: skip
            lg = g.create_group(name)
            lg.attrs["weight_names"] = [n.encode() for n, _ in pairs]
            for wname, value in pairs:
                lg.create_dataset(wname, data=value)
    spec, w = import_model(tmp_path / "bi.h5")
    assert spec.input.seq_len == 8 and spec.cells[0].bidirectional
    x = hard_inputs(spec, seed=6)
    got = rnnspec.predict(rnnspec.build(spec, "torch", weights=w), x)
    assert np.max(np.abs(got - _keras_out(ref, x))) <= TOL


# -- names from the file: they never change the written spec ------------------------------------------------


def test_a_newline_in_the_source_file_name_adds_no_key_to_spec_yaml(tmp_path: Path) -> None:
    """The source file's name goes into spec.yaml's comment as a quoted scalar: ``m\\nconvention: torch`` is not
    a key of the spec (the model keeps Keras's convention and its parameter count)."""
    model = keras.Sequential([_ids(4), L.Embedding(10, 3), L.GRU(4), L.Dense(1)])
    _randomize(model, 3)
    source = tmp_path / "m\nconvention: torch\n#.keras"
    model.save(source)
    out = tmp_path / "imported"
    assert main(["import", str(source), "-o", str(out)]) == 0
    text = (out / "spec.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert "convention" not in data
    assert text.startswith("# ") and text.splitlines()[0].endswith('"m\\nconvention: torch\\n#.keras"')
    spec = rnnspec.load_spec(out / "spec.yaml")
    assert spec.convention == "keras"
    assert sum(int(np.prod(w.shape)) for w in model.weights) == rnnspec.analyze(spec).total_params


def test_keras_names_that_clean_to_one_name_get_distinct_names(tmp_path: Path) -> None:
    """``x.y`` and ``x_y`` both clean to ``x_y``: the second becomes ``x_y_2`` (not "used twice")."""
    model = keras.Sequential(
        [_ids(5), L.Embedding(9, 3, name="x.y"), L.LSTM(4, name="x_y", return_sequences=True), L.GRU(2, name="x-y"),
         L.Dense(1, name="x y")]
    )  # fmt: skip
    _randomize(model, 5)
    model.save(tmp_path / "names.keras")
    spec, weights = import_model(tmp_path / "names.keras")
    names = spec.layer_names()
    assert len(set(names)) == 4 and names[2] == "x-y"
    assert set(names) == {"x_y", "x_y_2", "x-y", "x_y_3"}
    x = _inputs(spec)
    got = rnnspec.predict(rnnspec.build(spec, "numpy", weights=weights), x)
    assert np.max(np.abs(got - _keras_out(model, x))) <= TOL


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_nan_weights_in_a_keras_file_are_named_and_refused_unless_allowed(fmt: str, tmp_path: Path, capsys) -> None:
    model = _m_backwards()
    _randomize(model)
    kernel = next(w for w in model.weights if "dense" in w.path and w.path.endswith("kernel"))
    value = np.asarray(kernel.numpy()).copy()
    value.flat[:3] = [np.nan, np.inf, -np.inf]
    kernel.assign(value)
    model.save(tmp_path / f"nan.{fmt}")
    out = tmp_path / "o"
    _, weights = import_model(tmp_path / f"nan.{fmt}", allow_nonfinite=True)
    (name,) = [k for k, v in weights.items() if not np.isfinite(v).all()]
    assert name.endswith("kernel") and int(np.isnan(weights[name]).sum()) == 1
    for command in (["import", str(tmp_path / f"nan.{fmt}"), "-o", str(out)],
                    ["convert", str(tmp_path / f"nan.{fmt}"), "--to", "numpy", "-o", str(out)]):  # fmt: skip
        assert main(command) == 1
        err = capsys.readouterr().err
        assert f"1 weight(s) hold NaN or infinite values: {name} (3 of {value.size} values)" in err, err
        assert "--allow-nonfinite" in err and "Traceback" not in err and not out.exists()
    with pytest.raises(rnnspec.RnnspecError, match="hold NaN"):
        import_model(tmp_path / f"nan.{fmt}")
