"""Crafted and careless data files (Keras .npz, JSONL, vocab.json): a clear error, never a crash or a traceback.

The crafted object arrays use only the globals a real file uses (NumPy's ``_reconstruct``, ``ndarray``,
``dtype``). Given to NumPy's own unpickler, a state shorter than its shape crashes the process
(exit 139) and a huge shape allocates gigabytes first; rnnspec's reader never hands the state to NumPy.
"""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

_RECONSTRUCT = (np._core.multiarray if hasattr(np, "_core") else np.core.multiarray)._reconstruct


class _CraftedArray:
    """Pickles like a NumPy object array whose state claims ``shape`` but holds ``items``."""

    def __init__(self, shape: tuple[int, ...], items: list, dtype: object = object):
        self.shape, self.items, self.dtype = shape, items, np.dtype(dtype)

    def __reduce__(self):
        return (_RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, self.shape, self.dtype, False, self.items))


def _npy(header_shape: tuple[int, ...], payload: bytes, descr: str = "|O") -> bytes:
    fp = io.BytesIO()
    np.lib.format.write_array_header_1_0(fp, {"descr": descr, "fortran_order": False, "shape": header_shape})
    return fp.getvalue() + payload


def _reuters(path: Path, x_member: bytes, n: int = 2) -> Path:
    y = io.BytesIO()
    np.save(y, np.arange(n, dtype=np.int64))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x.npy", x_member)
        zf.writestr("y.npy", y.getvalue())
    return path


def _read_in_subprocess(path: Path) -> subprocess.CompletedProcess[str]:
    script = (
        "from rnnspec.data.keras_datasets import read_keras_npz\n"
        "from rnnspec.data.tokenizer import DataError\n"
        f"try:\n    read_keras_npz({str(path)!r})\nexcept DataError as exc:\n    print('DataError:', exc)\n"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


CASES = {
    "state_shorter_than_shape": ((1_000_000,), _CraftedArray((1_000_000,), [[1, 2]]), "do not fill its shape"),
    "huge_shape": ((2,), _CraftedArray((10**10,), [[1], [2]]), "shape"),
    "not_an_object_dtype": ((2,), _CraftedArray((2,), [[1], [2]], dtype=np.float64), "other than object"),
    "items_not_a_list": ((2,), _CraftedArray((2,), "ab"), "items"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_object_arrays_are_refused_without_crashing(case: str, tmp_path: Path) -> None:
    header_shape, crafted, fragment = CASES[case]
    path = _reuters(tmp_path / "reuters.npz", _npy(header_shape, pickle.dumps(crafted, protocol=3)))
    result = _read_in_subprocess(path)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-500:]}"
    assert "DataError:" in result.stdout and fragment in result.stdout


def test_a_numeric_header_claiming_a_huge_shape_is_refused_from_the_header(tmp_path: Path) -> None:
    member = _npy((10**11, 10), b"\x00" * 64, descr="<i8")
    path = _reuters(tmp_path / "reuters.npz", member)
    result = _read_in_subprocess(path)
    assert result.returncode == 0 and "its header does not match its data" in result.stdout


def test_a_genuine_keras_file_still_reads(tmp_path: Path) -> None:
    from rnnspec.data.keras_datasets import read_keras_npz

    x = np.empty(3, dtype=object)
    x[0], x[1], x[2] = [1, 2, 3], [4], [5, 6]
    fp = io.BytesIO()
    np.save(fp, x, allow_pickle=True)
    path = _reuters(tmp_path / "reuters.npz", fp.getvalue(), n=3)
    name, arrays = read_keras_npz(path)
    assert name == "reuters" and arrays["x"] == [[1, 2, 3], [4], [5, 6]] and arrays["y"].tolist() == [0, 1, 2]


# -- JSON in data files and vocab.json ---------------------------------------------------------------------

FEATURES_SPEC = "rnnspec: 1.1\nname: f\ninput: {features: 2}\nrecurrent: [{cell: lstm, units: 2}]\nhead: {units: 1}\n"
TEXT_SPEC = (
    "rnnspec: 1.1\nname: t\ninput: {vocab_size: 50, seq_len: 5}\nembedding: {output_dim: 2}\n"
    "recurrent: [{cell: lstm, units: 2}]\nhead: {units: 1, activation: sigmoid}\n"
)


@pytest.mark.parametrize(
    ("spec", "line", "fragment"),
    [
        (FEATURES_SPEC, '{"x": ' + "[" * 50000 + "]" * 50000 + ', "y": 1}', "nests too deeply"),
        (FEATURES_SPEC, '{"x": [[1, 2]], "y": ' + "9" * 5000 + "}", "too long"),
        (TEXT_SPEC, '{"text": "good", "label": ' + "[" * 50000 + "]" * 50000 + "}", "nests too deeply"),
    ],
    ids=["deep_sequence_jsonl", "huge_int_label", "deep_text_jsonl"],
)
def test_jsonl_lines_that_python_cannot_parse_are_located_errors(
    spec: str, line: str, fragment: str, tmp_path: Path
) -> None:
    import rnnspec
    from rnnspec.data import DataError

    good = '{"x": [[1, 2]], "y": 1}' if spec is FEATURES_SPEC else '{"text": "fine", "label": 1}'
    (tmp_path / "d.jsonl").write_text(good + "\n" + line + "\n")
    with pytest.raises(DataError, match=fragment) as info:
        rnnspec.load_data(rnnspec.loads_spec(spec), str(tmp_path / "d.jsonl"))
    assert "d.jsonl:2" in str(info.value)


def test_a_deeply_nested_vocab_json_is_an_error(tmp_path: Path) -> None:
    from rnnspec import RnnspecError
    from rnnspec.runtime.runs import read_vocab

    (tmp_path / "vocab.json").write_text("[" * 50000 + "]" * 50000)
    with pytest.raises(RnnspecError, match="nests too deeply"):
        read_vocab(tmp_path / "vocab.json")


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("f.csv", "text,label\ngood movie,0.1\nbad movie,0.9\n", "f.csv:2: label '0.1' is a number with a fraction"),
        ("b.jsonl", '{"text": "good", "label": 99999999999999999999}\n{"text": "bad", "label": 1}\n',
         "b.jsonl:1: a label is too large for a class id"),
        ("h.csv", "text,label\ngood," + "7" * 5000 + "\nbad,1\n", "h.csv:2: a label is too large"),
    ],
    ids=["decimal_labels_as_classes", "label_over_int64", "label_of_5000_digits"],
)  # fmt: skip
def test_text_file_labels_that_are_not_class_ids(name: str, content: str, fragment: str, tmp_path: Path) -> None:
    import rnnspec
    from rnnspec.data import DataError

    (tmp_path / name).write_text(content)
    spec = rnnspec.loads_spec(TEXT_SPEC + "training: {loss: binary_crossentropy}\n")
    with pytest.raises(DataError) as info:
        rnnspec.load_data(spec, str(tmp_path / name))
    assert fragment in str(info.value)


def test_uint64_labels_are_reported_as_they_are(tmp_path: Path) -> None:
    import rnnspec
    from rnnspec.data import DataError

    np.savez(tmp_path / "u.npz", x=np.ones((3, 5), dtype=np.int64), y=np.array([0, 1, 2**64 - 1], dtype=np.uint64))
    spec = rnnspec.loads_spec(TEXT_SPEC.replace("units: 1, activation: sigmoid", "units: 4, activation: softmax"))
    with pytest.raises(DataError) as info:
        rnnspec.load_data(spec, str(tmp_path / "u.npz"))
    message = str(info.value)
    assert "1844674407370955161" in message and "[-1" not in message and "units: 1844" not in message


def test_builtin_text_on_a_small_features_spec_names_the_right_field() -> None:
    import rnnspec
    from rnnspec.data import DataError

    spec = rnnspec.loads_spec(FEATURES_SPEC.replace("features: 2", "features: 3"))
    with pytest.raises(DataError) as info:
        rnnspec.load_data(spec, "builtin:sentiment")
    assert "raise input.features to 8" in str(info.value) and "vocab_size" not in str(info.value)


@pytest.mark.parametrize("kind", ["fifo", "folder", "sparse_giant"])
def test_data_paths_that_are_not_loadable_files(kind: str, tmp_path: Path) -> None:
    import os

    import rnnspec
    from rnnspec.data import DataError

    path = tmp_path / "data.jsonl"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        with path.open("wb") as fh:
            fh.truncate(64 * 1024**3)  # sparse: no disk, no memory
    # a giant file is streamed (not loaded): its first line, longer than any row, is refused before memory runs out
    with pytest.raises(DataError, match=r"not a regular file|a folder|line 1 is longer than 64 MiB"):
        rnnspec.load_data(rnnspec.loads_spec(FEATURES_SPEC), str(path))


@pytest.mark.parametrize(
    ("source", "vocab", "seq_len"), [("builtin:sentiment", 100, 10**9), ("builtin:topics", 10**11, 50)]
)
def test_generated_data_that_does_not_fit_is_refused_before_drawing(
    source: str, vocab: int, seq_len: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from rnnspec.cli import main
    from rnnspec.util import available_memory

    if available_memory() is None:
        pytest.skip("this machine does not report its available memory")
    head = "{units: 1, activation: sigmoid}" if source.endswith("sentiment") else "{units: 46, activation: softmax}"
    loss = "binary_crossentropy" if source.endswith("sentiment") else "sparse_categorical_crossentropy"
    spec = tmp_path / "big.yaml"
    spec.write_text(
        f"rnnspec: 1\nname: big\ninput: {{vocab_size: {vocab}, seq_len: {seq_len}}}\nembedding: {{output_dim: 2}}\n"
        f"recurrent:\n  - {{cell: gru, units: 2}}\nhead: {head}\ntraining: {{loss: {loss}, data: '{source}'}}\n"
    )
    from rnnspec.data import generated_bytes, load_data
    from rnnspec.lang.loader import load_spec

    n = 1024 if source.endswith("sentiment") else 2048
    assert generated_bytes(n, vocab, seq_len) > available_memory()
    with pytest.raises(Exception) as info:
        load_data(load_spec(spec))
    message = str(info.value)
    assert type(info.value).__name__ == "DataError"
    assert f"{source}: generating {n:,} sequences of up to {seq_len:,} tokens" in message
    assert "available" in message and "fix: lower the spec's seq_len or vocab_size" in message
    assert main(["train", str(spec), "-o", str(tmp_path / "run"), "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "needs about" in err
