"""Weights and artifact files that are hostile, damaged or unusual: clear errors, no traceback, nothing huge read."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from rnnspec.core.weights import WeightsError, load_weights_file

SPEC = "rnnspec: 1.1\nname: w\ninput: {features: 3}\nrecurrent: [{cell: lstm, units: 2}]\nhead: {units: 1}\n"


def _safetensors(
    path: Path, tensors: dict[str, tuple[str, tuple[int, ...], bytes]], metadata: dict | None = None
) -> Path:
    header: dict = {}
    offset = 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        for _, _, data in tensors.values():
            fh.write(data)
    return path


def test_bfloat16_and_float16_weights_widen_exactly(tmp_path: Path) -> None:
    values = np.array([1.0, -2.5, 0.15625, 3.0e4], dtype=np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    path = _safetensors(
        tmp_path / "h.safetensors", {"a": ("BF16", (4,), bf16), "b": ("F16", (4,), values.astype("<f2").tobytes())}
    )
    tensors, _ = load_weights_file(path)
    truncated = (values.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
    assert tensors["a"].dtype == np.float32 and np.array_equal(tensors["a"], truncated)
    assert np.array_equal(tensors["b"], values.astype(np.float16).astype(np.float32))


@pytest.mark.parametrize("dtype", ["I64", "BOOL", "U8"])
def test_integer_and_boolean_weights_are_refused(dtype: str, tmp_path: Path) -> None:
    size = {"I64": 8, "BOOL": 1, "U8": 1}[dtype]
    path = _safetensors(tmp_path / "i.safetensors", {"k": (dtype, (2,), b"\x01" * (2 * size))})
    with pytest.raises(WeightsError, match=f"holds {dtype} values"):
        load_weights_file(path)


def test_a_huge_sparse_file_is_refused_from_its_header(tmp_path: Path, capsys) -> None:
    n = 6 * 1024**3  # 24 GiB of float32, stored sparse: no disk, no memory used
    path = tmp_path / "huge.safetensors"
    header = json.dumps({"k": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}).encode()
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
        fh.truncate(8 + len(header) + 4 * n)
    (tmp_path / "s.yaml").write_text(SPEC)
    assert main(["build", str(tmp_path / "s.yaml"), "-b", "numpy", "--weights", str(path)]) == 1
    err = capsys.readouterr().err
    assert "GiB" in err and "available" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("claim", "fragment"),
    [(10**12, "its header claims"), (None, "the header describes")],
    ids=["header_length", "tensor_bytes"],
)
def test_headers_that_lie_about_sizes(claim: int | None, fragment: str, tmp_path: Path) -> None:
    path = tmp_path / "lie.safetensors"
    if claim is not None:
        path.write_bytes(struct.pack("<Q", claim) + b"{}")
    else:
        _safetensors(path, {"k": ("F32", (4,), b"\x00" * 16)})
        path.write_bytes(path.read_bytes()[:-8])  # a truncated file
    with pytest.raises(WeightsError, match=fragment):
        load_weights_file(path)


def test_deeply_nested_metadata_is_an_error(tmp_path: Path) -> None:
    raw = ("[" * 50000 + "]" * 50000).encode()
    path = tmp_path / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        load_weights_file(path)


def _saved(tmp_path: Path, poison: float | None = None) -> tuple[Path, Path]:
    spec = rnnspec.loads_spec(SPEC)
    weights = rnnspec.initial_weights(spec, seed=0)
    if poison is not None:
        weights["recurrent_0/kernel"][0, 0] = poison
    (tmp_path / "s.yaml").write_text(SPEC)
    rnnspec.save_weights(weights, tmp_path / "w.safetensors", spec)
    return tmp_path / "s.yaml", tmp_path / "w.safetensors"


@pytest.mark.parametrize("poison", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_nonfinite_weights_are_refused_unless_allowed(poison: float, tmp_path: Path, capsys) -> None:
    spec, weights = _saved(tmp_path, poison)
    assert main(["build", str(spec), "-b", "numpy", "--weights", str(weights)]) == 1
    assert "recurrent_0/kernel" in capsys.readouterr().err
    assert main(["convert", str(weights), "--to", "numpy", "-o", str(tmp_path / "o")]) == 1
    assert main(["build", str(spec), "-b", "numpy", "--weights", str(weights), "--allow-nonfinite"]) == 0


def test_a_torch_artifact_without_its_spec_or_with_wrong_tensors(tmp_path: Path, capsys) -> None:
    pytest.importorskip("torch")
    plain = _safetensors(tmp_path / "m.torch.safetensors", {"k": ("F32", (1,), b"\x00" * 4)})
    assert main(["convert", str(plain), "--to", "numpy", "-o", str(tmp_path / "o")]) == 1
    assert "without an rnnspec spec" in capsys.readouterr().err
    meta = {"format": "rnnspec-torch-state-dict/1", "spec": "{not json"}
    bad_json = _safetensors(tmp_path / "j.torch.safetensors", {"k": ("F32", (1,), b"\x00" * 4)}, meta)
    assert main(["convert", str(bad_json), "--to", "numpy", "-o", str(tmp_path / "o")]) == 1
    assert "(embedded spec):1:2: invalid JSON" in capsys.readouterr().err
    meta["spec"] = "[" * 100000 + "]" * 100000
    deep = _safetensors(tmp_path / "d.torch.safetensors", {"k": ("F32", (1,), b"\x00" * 4)}, meta)
    assert main(["convert", str(deep), "--to", "numpy", "-o", str(tmp_path / "o")]) == 1
    assert "nests too deeply" in capsys.readouterr().err
    meta["spec"] = json.dumps(rnnspec.loads_spec(SPEC).to_dict())
    wrong = _safetensors(tmp_path / "t.torch.safetensors", {"k": ("F32", (1,), b"\x00" * 4)}, meta)
    assert main(["convert", str(wrong), "--to", "numpy", "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "do not fit its spec" in err and "Traceback" not in err


def test_a_keras_artifact_whose_config_disagrees_with_its_spec(tmp_path: Path, capsys) -> None:
    pytest.importorskip("rnnspec_backends.keras.model", reason="the keras backend needs the keras extra")
    spec, weights = _saved(tmp_path)
    assert main(["build", str(spec), "-b", "keras", "--weights", str(weights), "-o", str(tmp_path / "k")]) == 0
    (artifact,) = (tmp_path / "k").glob("*.keras")
    with zipfile.ZipFile(artifact) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(members["config.json"])
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "LSTM":
            layer["config"]["activation"] = "relu"  # the embedded spec still says tanh
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(artifact, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    assert main(["convert", str(artifact), "--to", "numpy", "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "does not match its embedded rnnspec spec" in err and "activation" in err


@pytest.mark.parametrize(
    "model",
    [
        "input: {vocab_size: 1000000000}\nembedding: {output_dim: 4096}\nrecurrent: [{cell: lstm, units: 8}]\n",
        "input: {features: 8}\nrecurrent: [{cell: lstm, units: 1000000}]\n",
    ],
    ids=["vocab_1e9_x_4096", "units_1e6"],
)
def test_models_that_do_not_fit_are_refused_before_allocating(model: str, tmp_path: Path, capsys) -> None:
    (tmp_path / "big.yaml").write_text("rnnspec: 1\nname: big\n" + model)
    assert main(["summary", str(tmp_path / "big.yaml")]) == 0
    capsys.readouterr()
    assert main(["build", str(tmp_path / "big.yaml"), "-b", "numpy"]) == 1
    err = capsys.readouterr().err
    assert "TiB" in err and "available" in err
    with pytest.raises(WeightsError, match="available"):
        rnnspec.initial_weights(rnnspec.load_spec(tmp_path / "big.yaml"), seed=0)


def test_check_steps_are_bounded(capsys) -> None:
    assert main(["check", "specs/char_rnn_hello.yaml", "--steps", "1000000000000"]) == 2
