"""`rnnspec predict --input FILE`: every row answered as that row alone would be, in the file's order,
written safely; and the refusals of bad input files and outputs."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from rnnspec.cli.prediction import answer, plan_batches
from rnnspec.data import inputs_for_spec, pad_for_spec, pad_sequences
from rnnspec.data.tokenizer import Tokenizer
from rnnspec.runtime.runs import write_vocab
from tests.conftest import SPECS
from tests.parity import backend_or_skip

WORDS = [
    "good",
    "bad",
    "fine",
    "awful",
    "great",
    "poor",
    "film",
    "movie",
    "plot",
    "actor",
    "scene",
    "music",
    "long",
    "short",
]

MASKED_SIGMOID = """rnnspec: 1
name: masked-sigmoid
input: {vocab_size: 40}
embedding: {output_dim: 6, mask_zero: true}
recurrent:
  - {cell: lstm, units: 6}
head: {units: 1, activation: sigmoid}
training: {loss: binary_crossentropy}
"""

UNMASKED_SOFTMAX = """rnnspec: 1
name: unmasked-softmax
input: {vocab_size: 40}
embedding: {output_dim: 5}
recurrent:
  - {cell: gru, units: 5}
head: {units: 3, activation: softmax}
training: {loss: sparse_categorical_crossentropy}
"""

FIXED_TAGGER = """rnnspec: 1
name: fixed-tagger
input: {vocab_size: 40, seq_len: 9}
embedding: {output_dim: 4, mask_zero: true}
recurrent:
  - {cell: simple_rnn, units: 5, return_sequences: true}
head: {units: 4, activation: softmax}
training: {loss: sparse_categorical_crossentropy}
"""

FEATURES_REGRESSION = """rnnspec: 1
name: features-regression
input: {features: 2, mask_value: -1.0}
recurrent:
  - {cell: lstm, units: 4}
head: {units: 2}
training: {loss: mse}
"""


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 13))) for _ in range(n)]


def _run(tmp_path: Path, spec_text: str, *, classes: tuple[str, ...] | None = None, seed: int = 3) -> tuple:
    """A run folder: the spec's initial weights (seeded) and a vocab.json with a word tokenizer."""
    spec = rnnspec.loads_spec(spec_text)
    run = tmp_path / "run"
    run.mkdir()
    rnnspec.save_weights(rnnspec.initial_weights(spec, seed), run / f"{spec.name}.weights.safetensors", spec)
    tokenizer = None
    if spec.input.vocab_size is not None:
        tokenizer = Tokenizer("word", vocab_size=spec.input.vocab_size).fit(_texts(100, seed=9))
        tokenizer.classes = classes
    dataset = SimpleNamespace(source="train.csv", tokenizer=tokenizer, alphabet=None, classes=classes)
    write_vocab(run, dataset)
    return spec, run, tokenizer


def _alone(spec, model, x_row: np.ndarray, saved: dict, real=None) -> dict:
    """The reference: the model run on this one sample alone (a batch of one)."""
    return answer(spec, np.asarray(rnnspec.predict(model, x_row[None]))[0], saved, real)


def _same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    if "label" in want:
        assert got["label"] == want["label"]
        np.testing.assert_allclose(list(got["probabilities"].values()), list(want["probabilities"].values()), atol=1e-5)
    elif isinstance(want["output"], str) or (want["output"] and isinstance(want["output"][0], str)):
        assert got["output"] == want["output"]
    else:
        np.testing.assert_allclose(np.array(got["output"]), np.array(want["output"]), atol=1e-5)


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("spec_text", "classes"),
    [
        (MASKED_SIGMOID, ("negative", "positive")),
        (UNMASKED_SOFTMAX, ("a", "b", "c")),
        (FIXED_TAGGER, ("DET", "NOUN", "VERB", "ADJ")),
    ],
    ids=["masked-sorted-batches", "unmasked-equal-length-batches", "fixed-seq-len-per-step"],
)
def test_each_row_is_answered_as_it_would_be_alone(tmp_path: Path, spec_text: str, classes: tuple[str, ...]):
    backend_or_skip("torch")
    spec, run, tokenizer = _run(tmp_path, spec_text, classes=classes)
    texts = _texts(23, seed=1)
    source = tmp_path / "new.jsonl"
    source.write_text("\n".join(json.dumps({"text": t, "label": "ignored"}) for t in texts) + "\n\n")
    out = tmp_path / "answers.jsonl"
    assert main(["predict", str(run), "-i", str(source), "-o", str(out), "--batch-size", "4"]) == 0
    records = _read_jsonl(out)
    assert [r.pop("line") for r in records] == list(range(1, 24))  # the file's order, blank line skipped
    model = rnnspec.build(spec, "torch", weights=next(run.glob("*.safetensors")))
    saved = {"classes": classes}
    for text, record in zip(texts, records, strict=True):
        x = inputs_for_spec(pad_for_spec(tokenizer.encode([text]), spec), spec)[0]
        real = x != 0 if spec.embedding.mask_zero and spec.output_per_step else None
        _same(record, _alone(spec, model, x, saved, real))


def test_the_unmasked_model_would_answer_differently_if_rows_were_padded(tmp_path: Path):
    """Why rows of one length are batched together: padding changes an unmasked model's answer."""
    backend_or_skip("torch")
    spec, run, tokenizer = _run(tmp_path, UNMASKED_SOFTMAX, classes=("a", "b", "c"))
    model = rnnspec.build(spec, "torch", weights=next(run.glob("*.safetensors")))
    ids = tokenizer.encode(["good film", "a long plot with music and a bad actor"])
    alone = rnnspec.predict(model, np.array([ids[0]], dtype=np.int32))[0]
    padded = rnnspec.predict(model, pad_sequences(ids).astype(np.int32))[0]
    assert np.abs(alone - padded).max() > 1e-4


def test_csv_and_tsv_columns_and_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    backend_or_skip("torch")
    _, run, _ = _run(tmp_path, MASKED_SIGMOID, classes=("negative", "positive"))
    source = tmp_path / "new.csv"
    with source.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text"])  # no label column
        for k, text in enumerate(_texts(7)):
            writer.writerow([k, text])
    assert main(["predict", str(run), "-i", str(source)]) == 0
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert rows[0] == ["line", "label", "p", "p_negative", "p_positive"]
    assert [r[0] for r in rows[1:]] == [str(n) for n in range(2, 9)]
    for row in rows[1:]:
        p_neg, p_pos = float(row[3]), float(row[4])
        assert abs(p_neg + p_pos - 1) < 1e-6
        assert row[1] == ("positive" if p_pos > 0.5 else "negative") and float(row[2]) == max(p_neg, p_pos)
    tsv = tmp_path / "out.tsv"
    assert main(["predict", str(run), "-i", str(source), "-o", str(tsv)]) == 0
    assert f"wrote 7 predictions to {tsv}" in capsys.readouterr().out
    assert [line.split("\t") for line in tsv.read_text().splitlines()] == rows


def test_an_array_file_of_ids_equals_predict_on_the_array(tmp_path: Path):
    backend_or_skip("torch")
    spec, run, _ = _run(tmp_path, MASKED_SIGMOID, classes=("negative", "positive"))
    rng = np.random.default_rng(0)
    x = rng.integers(1, 40, size=(37, 15)).astype(np.int64)
    for k in range(37):
        x[k, : rng.integers(0, 15)] = 0  # pre-padding of every length, one row fully padded likely
    x[5] = 0
    np.savez(tmp_path / "ids.npz", x=x, y=np.zeros(37))  # a y array beside x is ignored
    np.save(tmp_path / "ids.npy", x)
    model = rnnspec.build(spec, "torch", weights=next(run.glob("*.safetensors")))
    want = np.asarray(rnnspec.predict(model, x.astype(np.int32)))[:, 0]
    for name in ("ids.npz", "ids.npy"):
        out = tmp_path / f"{name}.jsonl"
        assert main(["predict", str(run), "-i", str(tmp_path / name), "-o", str(out), "--batch-size", "8"]) == 0
        records = _read_jsonl(out)
        assert [r["index"] for r in records] == list(range(37))
        np.testing.assert_allclose([r["probabilities"]["positive"] for r in records], want, atol=1e-6)


def test_feature_sequences_from_jsonl_with_a_mask_value(tmp_path: Path):
    backend_or_skip("torch")
    spec, run, _ = _run(tmp_path, FEATURES_REGRESSION)
    rng = np.random.default_rng(1)
    seqs = [rng.normal(size=(int(n), 2)).round(3) for n in rng.integers(1, 9, size=11)]
    source = tmp_path / "seqs.jsonl"
    source.write_text("".join(json.dumps({"x": s.tolist()}) + "\n" for s in seqs))
    out = tmp_path / "out.csv"
    assert main(["predict", str(run), "-i", str(source), "-o", str(out), "--batch-size", "3"]) == 0
    rows = list(csv.reader(out.read_text().splitlines()))
    assert rows[0] == ["line", "output_0", "output_1"]
    model = rnnspec.build(spec, "torch", weights=next(run.glob("*.safetensors")))
    for seq, row in zip(seqs, rows[1:], strict=True):
        want = rnnspec.predict(model, seq[None].astype(np.float32))[0]
        np.testing.assert_allclose([float(v) for v in row[1:]], want, atol=1e-5)


def test_a_character_model_answers_each_line(tmp_path: Path):
    backend_or_skip("torch")
    run = tmp_path / "hello"
    assert main(["train", str(SPECS / "char_rnn_hello.yaml"), "--epochs", "60", "-o", str(run)]) == 0
    source = tmp_path / "chars.csv"
    source.write_text("text\nhello! world\nhello\nworld\nhe\n")
    out = tmp_path / "out.jsonl"
    assert main(["predict", str(run), "-i", str(source), "-o", str(out), "--batch-size", "2"]) == 0
    records = _read_jsonl(out)
    for text, record in zip(["hello! world", "hello", "world", "he"], records, strict=True):
        from rnnspec.cli.prediction import run_predict

        alone = run_predict(run, None, text, "torch", vocab=None)
        assert record["output"] == alone and len(alone) == len(text)


def test_keras_and_torch_give_the_same_answers_for_a_file(tmp_path: Path):
    backend_or_skip("torch")
    backend_or_skip("keras")
    _, run, _ = _run(tmp_path, UNMASKED_SOFTMAX, classes=("a", "b", "c"))
    source = tmp_path / "new.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in _texts(9, seed=4)))
    answers = {}
    for backend in ("torch", "keras"):
        out = tmp_path / f"{backend}.jsonl"
        assert main(["predict", str(run), "-i", str(source), "-o", str(out), "-b", backend, "--batch-size", "4"]) == 0
        answers[backend] = _read_jsonl(out)
    for mine, theirs in zip(answers["torch"], answers["keras"], strict=True):
        _same(mine, theirs)


def test_plan_batches_covers_every_row_once():
    lengths = np.array([5, 3, 5, 1, 3, 3, 9, 5])
    for fixed, masked in ((True, False), (False, True), (False, False)):
        batches = plan_batches(lengths, 2, fixed=fixed, masked=masked)
        assert sorted(np.concatenate(batches).tolist()) == list(range(8))
        assert all(1 <= len(b) <= 2 for b in batches)
    assert [b.tolist() for b in plan_batches(lengths, 3, fixed=True, masked=False)] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    masked = plan_batches(lengths, 3, fixed=False, masked=True)
    assert [lengths[b].tolist() for b in masked] == [[1, 3, 3], [3, 5, 5], [5, 9]]
    grouped = plan_batches(lengths, 2, fixed=False, masked=False)
    assert all(len(set(lengths[b])) == 1 for b in grouped)  # one length per batch: no padding


# -- outputs that would lose a file, and usage -------------------------------------------------------


def test_an_existing_output_is_kept_unless_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    backend_or_skip("torch")
    _, run, _ = _run(tmp_path, MASKED_SIGMOID, classes=("negative", "positive"))
    source = tmp_path / "new.csv"
    source.write_text("text\ngood film\n")
    out = tmp_path / "out.csv"
    out.write_text("precious\n")
    assert main(["predict", str(run), "-i", str(source), "-o", str(out)]) == 1
    assert "out.csv exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    assert main(["predict", str(run), "-i", str(source), "-o", str(source), "--overwrite"]) == 1
    assert "is the input file" in capsys.readouterr().err and source.read_text() == "text\ngood film\n"
    assert main(["predict", str(run), "-i", str(source), "-o", str(out), "--overwrite"]) == 0
    assert out.read_text().startswith("line,label,p,")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give exactly one of --text TEXT and --input FILE"),
        (["--text", "good", "-i", "x.csv"], "give exactly one of --text TEXT and --input FILE"),
        (["--text", "good", "-o", "out.csv"], "--output goes with --input FILE"),
        (["-i", "x.csv", "-o", "out.txt"], "name the file with one of .csv, .tsv, .jsonl"),
        (["-i", "x.csv", "--batch-size", "0"], "--batch-size"),
    ],
)
def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str):
    assert main(["predict", str(tmp_path), *extra]) == 2
    assert message in " ".join(capsys.readouterr().err.replace("│", " ").split())


# -- hostile and wrong input files --------------------------------------------------------------------


def _corrupt_npy(path: Path) -> None:
    np.save(path, np.ones((4, 10), np.int32))
    data = path.read_bytes()
    path.write_bytes(data.replace(b"(4, 10)", b"(9999999, 10)"))


@pytest.mark.parametrize(
    ("name", "write", "message"),
    [
        ("big.npy", _corrupt_npy, "its header does not match its data"),
        ("obj.npz", lambda p: np.savez(p, x=np.array([[1, 2], [3]], dtype=object)), "not a plain numeric array"),
        ("two.npz", lambda p: np.savez(p, a=np.ones((2, 3)), b=np.ones(2)), "which array holds the inputs?"),
        ("floats.npy", lambda p: np.save(p, np.full((2, 4), 0.5)), "holds non-integer values"),
        ("range.npy", lambda p: np.save(p, np.full((3, 4), 99)), "token ids out of the spec's range"),
        ("wraps.npy", lambda p: np.save(p, np.array([[1, 2, 2**32 + 5]])), "ids from 1 to 4294967301"),
        ("junk.npy", lambda p: p.write_bytes(b"\x93NUMPY\x01\x00garbage"), "not a valid .npy array"),
        ("empty.npy", lambda p: np.save(p, np.zeros((0, 4), np.int32)), "has no samples"),
        ("blank.csv", lambda p: p.write_text('text\ngood film\n""\n'), "no tokens to predict on"),
        ("notext.csv", lambda p: p.write_text("review\ngood\n"), "no column 'text'"),
        ("data.txt", lambda p: p.write_text("good\n"), "unknown kind of input file"),
    ],
)
def test_bad_input_files_are_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, write, message: str
):
    backend_or_skip("torch")
    _, run, _ = _run(tmp_path, MASKED_SIGMOID, classes=("negative", "positive"))
    source = tmp_path / name
    write(source)
    out = tmp_path / "out.csv"
    assert main(["predict", str(run), "-i", str(source), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_non_finite_answers_name_the_rows_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    backend_or_skip("torch")
    spec, run, _ = _run(tmp_path, FEATURES_REGRESSION)
    weights = next(run.glob("*.safetensors"))
    values = rnnspec.initial_weights(spec, seed=0)
    big = np.float32(3e38)  # finite weights whose outputs are NaN: x·W + b overflows to +inf, h·U to -inf
    values["recurrent_0/kernel"][:] = big
    values["recurrent_0/bias"][:] = big
    values["recurrent_0/recurrent_kernel"][:] = -big
    rnnspec.save_weights(values, weights, spec)
    np.save(tmp_path / "x.npy", np.full((3, 4, 2), 2.0, np.float32))
    out = tmp_path / "out.csv"
    assert main(["predict", str(run), "-i", str(tmp_path / "x.npy"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "not finite for 3 input(s) (index 0, index 1, index 2)" in err
    assert not out.exists()


@pytest.mark.parametrize("backend", ["torch", "keras", "numpy"])
def test_predict_in_batches_equals_one_batch(backend: str):
    backend_or_skip(backend)
    spec = rnnspec.loads_spec(MASKED_SIGMOID)
    model = rnnspec.build(spec, backend, seed=1)
    x = np.random.default_rng(2).integers(0, 40, size=(10, 7)).astype(np.int32)
    whole = rnnspec.predict(model, x)
    np.testing.assert_allclose(rnnspec.predict(model, x, batch_size=3), whole, atol=1e-6)
    assert rnnspec.predict(model, x, batch_size=3).shape == whole.shape == (10, 1)
    with pytest.raises(rnnspec.RnnspecError, match="batch_size must be a positive integer"):
        rnnspec.predict(model, x, batch_size=0)
