"""Text files larger than memory: indexed in one pass, tokenized a batch at a time, the same batches as in memory."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from rnnspec.data import DataError, Tokenizer, load_data, read_text_file
from rnnspec.data import textstream as textstream_module
from rnnspec.data.textfiles import iter_text_records
from rnnspec.data.textstream import EncodedRows
from tests.parity import backend_or_skip

SPEC = """rnnspec: 1
name: streamed
input: {vocab_size: 14}
embedding: {output_dim: 5, mask_zero: true}
recurrent:
  - {cell: lstm, units: 4}
head: {units: 1, activation: sigmoid}
training:
  optimizer: adam
  loss: binary_crossentropy
  metrics: [accuracy]
  batch_size: 16
  epochs: 2
  validation_split: 0.2
"""

WORDS = ["good", "bad", "fine", "awful", "great", "terrible", "movie", "plot", "actor"]
WORDS += ["the", "a", "is", "was", "one", "two", "three"]


def _texts(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [
        (" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 25))), rng.choice(["pos", "neg"])) for _ in range(n)
    ]


def _csv(path: Path, rows: list[tuple[str, str]], newline: str = "\n", bom: bool = False) -> Path:
    """A CSV with the cases a reader gets wrong: quoted fields with commas, quotes and line breaks, blank lines."""
    out = ["text,label"]
    for i, (text, label) in enumerate(rows):
        if i % 5 == 0:
            text = f'"{text}, ""quoted""{newline}and a second line é"'
        out.append(f"{text},{label}")
        if i % 9 == 0:
            out.append("")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + newline.join(out).encode() + newline.encode())
    return path


@pytest.fixture
def streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every text file with one label per sample is streamed (the threshold is 256 MiB otherwise)."""
    monkeypatch.setattr(textstream_module, "STREAM_BYTES", 0)


def _both(spec_text: str, path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs):
    spec = rnnspec.loads_spec(spec_text)
    whole = load_data(spec, path, **kwargs)
    monkeypatch.setattr(textstream_module, "STREAM_BYTES", 0)
    streamed = load_data(spec, path, **kwargs)
    monkeypatch.undo()
    return spec, whole, streamed


@pytest.mark.parametrize(
    "name, newline, bom",
    [("plain.csv", "\n", False), ("crlf.csv", "\r\n", True), ("mac.csv", "\r", False)],
)
def test_a_streamed_csv_gives_the_arrays_of_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, newline: str, bom: bool
):
    path = _csv(tmp_path / name, _texts(120), newline, bom)
    _, whole, streamed = _both(SPEC, path, monkeypatch)
    assert isinstance(streamed.x, EncodedRows) and not isinstance(whole.x, EncodedRows)
    assert streamed.x.shape == whole.x.shape and streamed.x.dtype == whole.x.dtype == np.int32
    assert np.array_equal(np.asarray(streamed.x), whole.x)
    assert np.array_equal(streamed.y, whole.y) and streamed.classes == whole.classes == ("neg", "pos")
    assert streamed.tokenizer == whole.tokenizer
    index = np.random.default_rng(0).permutation(120)[:40]
    assert np.array_equal(streamed.x[index], whole.x[index])  # rows in any order, neighbours read together
    assert np.array_equal(streamed.x[30:90][[5, 4, 59]], whole.x[[35, 34, 89]])


def test_the_records_remember_the_bytes_they_came_from(tmp_path: Path):
    path = _csv(tmp_path / "a.csv", _texts(30), "\r\n", bom=True)
    layout, records = iter_text_records(path)
    data = path.read_bytes()
    texts = read_text_file(path).texts
    seen = [layout.text_of(data[r.start : r.end], f"line {r.line}") for r in records]
    assert seen == texts and any("\r\n" in t for t in texts)


def test_jsonl_tsv_and_limit_stream_like_the_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    rows = _texts(80, seed=1)
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t, "label": int(lab == "pos")}) for t, lab in rows) + "\n\n")
    tsv = tmp_path / "a.tsv"
    tsv.write_text("label\ttext\n" + "".join(f"{lab}\t{t}\n" for t, lab in rows))
    for path, kwargs in ((jsonl, {}), (tsv, {}), (jsonl, {"limit": 17})):
        _, whole, streamed = _both(SPEC.replace("input: {vocab_size: 14}", "input: {vocab_size: 9, seq_len: 12}"),
                                   path, monkeypatch, **kwargs)  # fmt: skip
        assert isinstance(streamed.x, EncodedRows) and streamed.x.shape == whole.x.shape
        assert np.array_equal(np.asarray(streamed.x), whole.x) and np.array_equal(streamed.y, whole.y)
        assert streamed.tokenizer == whole.tokenizer  # fitted on the rows kept only


def test_a_character_model_streams_one_hot_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    spec_text = (
        "rnnspec: 1\nname: chars\ninput: {features: 12}\nrecurrent: [{cell: gru, units: 3}]\n"
        "head: {units: 1, activation: sigmoid}\ntraining: {loss: binary_crossentropy}\n"
    )
    path = _csv(tmp_path / "c.csv", _texts(25))
    _, whole, streamed = _both(spec_text, path, monkeypatch)
    assert streamed.x.shape == whole.x.shape and streamed.x.dtype == np.float32 and streamed.x.shape[2] == 12
    assert np.array_equal(np.asarray(streamed.x), whole.x)


def test_evaluation_reuses_the_saved_tokenizer(tmp_path: Path, streamed: None):
    spec = rnnspec.loads_spec(SPEC)
    train = load_data(spec, _csv(tmp_path / "train.csv", _texts(60)))
    tokenizer = Tokenizer.from_json(train.tokenizer.to_json())
    test_path = _csv(tmp_path / "test.csv", _texts(30, seed=5))
    test = load_data(spec, test_path, tokenizer=tokenizer)
    assert isinstance(test.x, EncodedRows)
    expected = train.tokenizer.encode(read_text_file(test_path).texts)
    assert np.array_equal(np.asarray(test.x), rnnspec.data.pad_sequences(expected, test.x.shape[1]))
    (tmp_path / "odd.csv").write_text("text,label\nsome words,maybe\n")
    with pytest.raises(DataError, match="unknown label 'maybe'"):
        load_data(spec, tmp_path / "odd.csv", tokenizer=tokenizer)


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_training_on_a_streamed_file_equals_training_in_memory(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    backend_or_skip(backend)
    spec, whole, streamed = _both(SPEC, _csv(tmp_path / "a.csv", _texts(100)), monkeypatch)
    weights = rnnspec.initial_weights(spec, 0)
    histories, finals = [], []
    for data in (streamed, whole):
        model = rnnspec.build(spec, backend, weights=weights)
        histories.append(rnnspec.fit(model, data.x, data.y, seed=4))
        finals.append(rnnspec.get_weights(model))
    assert histories[0] == histories[1]  # the same batches: bit for bit
    assert all(np.array_equal(finals[0][k], finals[1][k]) for k in finals[1])


def test_train_and_evaluate_a_streamed_file_on_the_command_line(tmp_path: Path, monkeypatch, capsys):
    backend_or_skip("torch")
    (tmp_path / "s.yaml").write_text(SPEC)
    data = _csv(tmp_path / "a.csv", _texts(80))
    args = ["train", str(tmp_path / "s.yaml"), "--data", str(data), "--backend", "torch"]
    assert main([*args, "-o", str(tmp_path / "whole")]) == 0
    monkeypatch.setattr(textstream_module, "STREAM_BYTES", 0)
    assert main([*args, "-o", str(tmp_path / "streamed")]) == 0
    histories = [json.loads((tmp_path / d / "history.json").read_text()) for d in ("whole", "streamed")]
    assert histories[0] == histories[1]
    assert (tmp_path / "whole" / "vocab.json").read_text() == (tmp_path / "streamed" / "vocab.json").read_text()
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "streamed"), "--data", str(data)]) == 0
    assert "loss" in capsys.readouterr().out


def test_a_data_file_changed_during_training_is_refused(tmp_path: Path, streamed: None):
    spec = rnnspec.loads_spec(SPEC)
    path = _csv(tmp_path / "a.csv", _texts(40))
    rows = load_data(spec, path).x
    stat = path.stat()
    path.write_bytes(path.read_bytes().replace(b"good", b"GOOD"))  # same size, new contents
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(DataError, match="changed while it was being read"):
        rows[[0, 1]]


def test_the_checkpoint_fingerprint_sees_the_file_not_the_object(tmp_path: Path, streamed: None):
    from rnnspec.runtime.checkpoint import _data_hash

    spec = rnnspec.loads_spec(SPEC)
    rows = _texts(40)
    one = load_data(spec, _csv(tmp_path / "a.csv", rows))
    again = load_data(spec, _csv(tmp_path / "b.csv", rows))
    rows[3] = ("a different text", rows[3][1])
    other = load_data(spec, _csv(tmp_path / "c.csv", rows))
    assert _data_hash([one.x]) == _data_hash([again.x]) != _data_hash([other.x])
    assert _data_hash([one.x[:10]]) != _data_hash([one.x])


def test_bad_rows_are_found_in_the_one_pass_with_their_line(tmp_path: Path, streamed: None):
    spec = rnnspec.loads_spec(SPEC)
    (tmp_path / "bad.csv").write_text("text,label\nfine words,pos\nno label here,\n")
    with pytest.raises(DataError) as info:
        load_data(spec, tmp_path / "bad.csv")
    assert "bad.csv:3" in str(info.value) and "empty label" in str(info.value)
    (tmp_path / "latin.csv").write_bytes(b"text,label\nok,pos\ncaf\xe9,neg\n")
    with pytest.raises(DataError) as info:
        load_data(spec, tmp_path / "latin.csv")
    assert "latin.csv:3" in str(info.value) and "not UTF-8" in str(info.value)


def test_a_per_step_file_is_read_whole(tmp_path: Path, streamed: None):
    spec = rnnspec.loads_spec(
        "rnnspec: 1\nname: tags\ninput: {vocab_size: 20}\nembedding: {output_dim: 4, mask_zero: true}\n"
        "recurrent: [{cell: gru, units: 3, return_sequences: true}]\nhead: {units: 3, activation: softmax}\n"
        "training: {loss: sparse_categorical_crossentropy}\n"
    )
    (tmp_path / "t.jsonl").write_text('{"text": "a b c", "label": [0, 1, 2]}\n{"text": "b c", "label": [2, 1]}\n')
    data = load_data(spec, tmp_path / "t.jsonl")
    assert isinstance(data.x, np.ndarray) and data.y.shape == (2, 3)


def test_a_line_longer_than_any_row_is_refused_at_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from rnnspec.data import textfiles

    monkeypatch.setattr(textfiles, "MAX_LINE_BYTES", 100)
    path = tmp_path / "long.jsonl"
    path.write_text('{"text": "short", "label": 1}\n' + json.dumps({"text": "word " * 50, "label": 0}) + "\n")
    for stream in (False, True):  # read whole, and streamed
        monkeypatch.setattr(textstream_module, "STREAM_BYTES", 0 if stream else 1 << 40)
        with pytest.raises(DataError) as info:
            load_data(rnnspec.loads_spec(SPEC), path)
        assert "long.jsonl:2" in str(info.value) and "longer than" in str(info.value)
