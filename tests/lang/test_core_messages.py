"""The framework-free core's messages, pinned whole: what was received, what was expected, the fix.

Each expected text here is written from the behaviour a user needs (not copied from a run), so a
change to a message, a bound or a branch of the core fails a test (mutation testing, docs/development.md).
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from rnnspec.core.weights import WeightsError, check_seed
from rnnspec.lang.errors import Issue, SpecError, format_path, render_problem
from rnnspec.lang.loader import loads_spec
from tests.conftest import TESTS


@pytest.mark.parametrize("seed", [True, False, 1.5, 3.0, "3", -1, [1], np.float64(2.0), 2**32, 2**63, 2**64])
def test_a_seed_that_is_not_an_integer_from_0_to_2_32_is_refused(seed: object):
    with pytest.raises(WeightsError) as info:
        check_seed(seed)
    assert str(info.value) == f"a seed must be an integer from 0 to 2**32-1 (4294967295) or None, received {seed!r}"


@pytest.mark.parametrize("seed", [None, 0, 7, 2**32 - 1, np.int64(5), np.uint8(3), np.uint64(2**32 - 1)])
def test_a_non_negative_integer_seed_is_taken(seed: object):
    check_seed(seed)


def test_format_path_writes_fields_as_a_user_does():
    assert format_path(()) == ""
    assert format_path(("recurrent", 1, "units")) == "recurrent[1].units"
    assert format_path((0, "a")) == "[0].a"
    assert format_path(("head",)) == "head"


def test_an_issue_renders_where_what_received_expected_fix():
    issue = Issue(
        message="value out of range",
        path=("recurrent", 0, "units"),
        file="s.yaml",
        line=7,
        column=12,
        received="0 (integer)",
        expected="a number greater than 0",
        fix="use a number greater than 0",
    )
    assert issue.where == "s.yaml:7:12"
    assert issue.render() == (
        "s.yaml:7:12: recurrent[0].units: value out of range\n"
        "    received: 0 (integer)\n"
        "    expected: a number greater than 0\n"
        "    fix: use a number greater than 0"
    )
    assert issue.to_dict() == {
        "file": "s.yaml",
        "line": 7,
        "column": 12,
        "path": "recurrent[0].units",
        "message": "value out of range",
        "received": "0 (integer)",
        "expected": "a number greater than 0",
        "fix": "use a number greater than 0",
    }


def test_an_issue_without_position_or_path_renders_what_it_has():
    assert Issue(message="the spec is empty").render() == "<spec>: the spec is empty"
    assert Issue(message="m", file="f.yaml", line=3).where == "f.yaml:3"
    assert Issue(message="m", file="f.yaml", column=3).where == "f.yaml"  # a column without a line is not shown
    assert Issue(message="m", path=("name",), fix="f").render() == "<spec>: name: m\n    fix: f"


def test_render_problem_without_a_head():
    assert render_problem(None, "bad", None, "x", None) == "bad\n    expected: x"


def test_a_spec_error_counts_its_issues():
    one = SpecError([Issue(message="a")])
    two = SpecError([Issue(message="a"), Issue(message="b", file="f")])
    assert str(one) == "1 error in spec:\n<spec>: a"
    assert str(two) == "2 errors in spec:\n<spec>: a\nf: b"
    assert one.args == (str(one),)
    assert str(SpecError()) == "0 errors in spec:\n"


# -- the spec loader: one mistake per case, the whole message the user reads ---------------------

BASE = (
    "rnnspec: 1\nname: t\ninput: {vocab_size: 100}\nembedding: {output_dim: 4}\nrecurrent:\n  - {cell: gru, units: 4}\n"
    "head: {units: 1, activation: sigmoid}\n"
    "training: {optimizer: {name: adam, learning_rate: 0.01}, loss: binary_crossentropy}\n"
)

MESSAGES = yaml.safe_load((TESTS / "core_messages.yaml").read_text())
CASES = [pytest.param(c["old"], c["new"], c["rendered"], id=c["id"]) for c in MESSAGES["replacements"]]
DOCUMENTS = [pytest.param(c["spec"], c["rendered"], id=c["id"]) for c in MESSAGES["documents"]]


def test_the_base_spec_is_valid():
    assert loads_spec(BASE).name == "t"


@pytest.mark.parametrize(("old", "new", "rendered"), CASES)
def test_a_spec_mistake_is_reported_whole(old: str, new: str, rendered: str):
    assert old in BASE
    with pytest.raises(SpecError) as info:
        loads_spec(BASE.replace(old, new, 1), file="s.yaml")
    assert [issue.render() for issue in info.value.issues] == [rendered]


@pytest.mark.parametrize(("text", "rendered"), DOCUMENTS)
def test_a_spec_document_is_reported_whole(text: str, rendered: str):
    with pytest.raises(SpecError) as info:
        loads_spec(text, file="s.yaml")
    assert "\n".join(issue.render() for issue in info.value.issues) == rendered


# -- canonical weights: memory estimates, convention overrides, whole messages ---------------------


def _spec(text: str = BASE):
    return loads_spec(text)


def test_memory_needed_counts_float32_copies_and_one_float64_draw():
    import rnnspec.core.weights as w

    spec = _spec()  # embedding 100x4, GRU(4) on 4 inputs (reset_after: bias (2, 12)), Dense 4->1
    sizes = {"embedding": 400, "kernel": 4 * 12, "recurrent": 4 * 12, "bias": 2 * 12, "head": 4 + 1}
    params = sum(sizes.values())
    assert w.memory_needed(spec) == 4 * params * 2 + 8 * 400
    assert w.memory_needed(spec, copies=0) == 4 * params + 8 * 400
    assert w.memory_needed(spec, copies=3) == 4 * params * 4 + 8 * 400
    # the torch convention has the same arrays for a reset_after GRU; an LSTM gains recurrent_bias
    lstm = _spec(BASE.replace("cell: gru", "cell: lstm"))
    lstm_params = 400 + 4 * 16 + 4 * 16 + 16 + 5
    assert w.memory_needed(lstm, copies=0) == 4 * lstm_params + 8 * 400
    assert w.memory_needed(lstm, copies=0, convention="torch") == 4 * (lstm_params + 16) + 8 * 400


def test_a_model_that_does_not_fit_is_refused_with_the_numbers(monkeypatch: pytest.MonkeyPatch):
    import rnnspec.core.weights as w
    import rnnspec.util

    spec = _spec()
    need = w.memory_needed(spec, copies=1)
    monkeypatch.setattr(rnnspec.util, "available_memory", lambda: need - 1)
    with pytest.raises(WeightsError) as info:
        w.check_fits_memory(spec, "building the keras model")
    assert str(info.value) == (
        f"building the keras model of 't' needs about {rnnspec.util.human_bytes(need)} (525 parameters as "
        f"float32, with the copies made while building), but the machine has {rnnspec.util.human_bytes(need - 1)} "
        "available. fix: make the model smaller (vocab_size, output_dim, units), or use a machine with more memory"
    )
    monkeypatch.setattr(rnnspec.util, "available_memory", lambda: need)
    w.check_fits_memory(spec, "x")  # exactly enough is enough
    monkeypatch.setattr(rnnspec.util, "available_memory", lambda: None)
    w.check_fits_memory(spec, "x")  # unknown memory: nothing refused
    monkeypatch.setattr(rnnspec.util, "available_memory", lambda: need - 1)
    w.check_fits_memory(spec, "x", copies=0)  # fewer copies need less
    monkeypatch.setattr(rnnspec.util, "available_memory", lambda: w.memory_needed(spec, copies=0) - 1)
    with pytest.raises(WeightsError, match=r"^drawing the initial weights of 't' needs"):
        w.initial_weights(spec)


def test_initial_weights_and_check_weights_follow_a_convention_override():
    import rnnspec.core.weights as w

    lstm = _spec(BASE.replace("cell: gru", "cell: lstm"))
    keras = w.initial_weights(lstm, seed=1)
    torch = w.initial_weights(lstm, seed=1, convention="torch")
    assert set(torch) - set(keras) == {"recurrent_0/recurrent_bias"}
    assert np.all(torch["recurrent_0/recurrent_bias"] == 0)
    w.check_weights(lstm, torch, convention="torch")
    with pytest.raises(WeightsError) as info:
        w.check_weights(lstm, torch)
    assert str(info.value) == (
        "the weights do not fit spec 't' (keras convention):\n"
        "  unexpected recurrent_0/recurrent_bias (not a weight of this spec)\n"
        "  fix: use weights saved for this spec, or the spec they were saved with (a weights file written by "
        "rnnspec carries it: give the run folder alone, without a spec)"
    )
    with pytest.raises(WeightsError) as info:
        w.check_weights(lstm, keras, convention="torch")
    assert str(info.value).splitlines()[:2] == [
        "the weights do not fit spec 't' (torch convention):",
        "  missing recurrent_0/recurrent_bias (expected shape (16,))",
    ]


def test_check_weights_names_every_mismatch_in_order():
    import rnnspec.core.weights as w

    spec = _spec()
    weights = w.initial_weights(spec, seed=0)
    weights["recurrent_0/kernel"] = np.zeros((4, 13), np.float32)
    del weights["head/bias"]
    weights["extra"] = np.zeros(1, np.float32)
    with pytest.raises(WeightsError) as info:
        w.check_weights(spec, weights)
    assert str(info.value) == (
        "the weights do not fit spec 't' (keras convention):\n"
        "  recurrent_0/kernel: shape (4, 13), expected (4, 12)\n"
        "  missing head/bias (expected shape (1,))\n"
        "  unexpected extra (not a weight of this spec)\n"
        "  fix: use weights saved for this spec, or the spec they were saved with (a weights file written by "
        "rnnspec carries it: give the run folder alone, without a spec)"
    )


def test_initial_weights_are_keras_defaults_in_float32():
    import rnnspec.core.weights as w

    spec = _spec(BASE.replace("cell: gru", "cell: lstm"))
    weights = w.initial_weights(spec, seed=5)
    assert all(v.dtype == np.float32 for v in weights.values())
    emb = weights["embedding/embeddings"]
    assert np.abs(emb).max() <= 0.05 and np.abs(emb).max() > 0.04
    kernel = weights["recurrent_0/kernel"]  # glorot uniform over (4, 16): limit sqrt(6 / 20)
    assert np.abs(kernel).max() <= np.sqrt(6 / 20) + 1e-7
    rec = weights["recurrent_0/recurrent_kernel"].astype(np.float64)  # (4, 16): orthonormal rows
    np.testing.assert_allclose(rec @ rec.T, np.eye(4), atol=1e-6)
    square = w.initial_weights(_spec(BASE.replace("cell: gru, units: 4", "cell: simple_rnn, units: 4")), seed=5)
    q = square["recurrent_0/recurrent_kernel"].astype(np.float64)
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-6)
    bias = weights["recurrent_0/bias"]
    assert np.all(bias[4:8] == 1) and np.all(bias[:4] == 0) and np.all(bias[8:] == 0)
    assert np.all(weights["head/bias"] == 0)
    tall = w._orthogonal(np.random.default_rng(0), (6, 3))
    np.testing.assert_allclose(tall.T @ tall, np.eye(3), atol=1e-12)


def test_a_weights_file_keeps_the_spec_the_convention_and_float32(tmp_path):
    import json

    import rnnspec.core.weights as w

    lstm = _spec(BASE.replace("cell: gru", "cell: lstm"))
    weights = {k: v.astype(np.float64) for k, v in w.initial_weights(lstm, seed=2, convention="torch").items()}
    path = tmp_path / "w.safetensors"
    w.save_weights_file(weights, path, lstm, convention="torch")
    loaded, metadata = w.load_weights_file(path)
    assert metadata == {
        "format": "rnnspec-weights/1",
        "spec": json.dumps(lstm.to_dict(), sort_keys=True),
        "convention": "torch",
    }
    assert all(v.dtype == np.float32 for v in loaded.values()) and loaded.keys() == weights.keys()
    raw = path.read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert {entry["dtype"] for key, entry in header.items() if key != "__metadata__"} == {"F32"}
    with pytest.raises(WeightsError, match=r"\(torch convention\)"):
        w.save_weights_file({k: v for k, v in weights.items() if "recurrent_bias" not in k}, path, lstm, "torch")


@pytest.mark.parametrize("count", [5, 6])
def test_nonfinite_weights_are_named_up_to_five(count: int, tmp_path):
    import rnnspec.core.weights as w

    weights = {f"w{i}": np.array([np.nan if i < count else 1.0], np.float32) for i in range(7)}
    path = tmp_path / "nan.safetensors"
    w.save_weights_file(weights, path)
    with pytest.raises(WeightsError) as info:
        w.load_weights_file(path)
    names = ", ".join(f"w{i} (1 of 1 values)" for i in range(5)) + (", and 1 more" if count > 5 else "")
    assert str(info.value) == (
        f"{path}: {count} weight(s) hold NaN or infinite values: {names}; a model with them computes NaN. fix: "
        "use the weights of the last finite epoch, or pass --allow-nonfinite (Python: allow_nonfinite=True) to "
        "inspect them"
    )
    assert np.isnan(w.load_weights_file(path, allow_nonfinite=True)[0]["w0"]).all()


def test_a_folder_or_a_missing_path_as_weights(tmp_path):
    import rnnspec.core.weights as w

    with pytest.raises(WeightsError) as info:
        w.load_weights_file(tmp_path)
    assert str(info.value) == f"{tmp_path} is a folder; name the .safetensors weights file inside it"
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(WeightsError) as info:
        w.load_weights_file(missing)
    assert str(info.value) == f"{missing}: no such weights file (expected a .safetensors file written by rnnspec)"
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x05" + b"\x00" * 7 + b"{}}}}")
    with pytest.raises(WeightsError) as info:
        w.load_weights_file(junk)
    message = str(info.value)
    assert message.startswith(f"{junk}: not a readable safetensors file (")
    assert message.endswith(
        "); it may be truncated or corrupted. fix: write it again with `rnnspec build -o` or `rnnspec.save_weights`"
    )


def test_the_memory_check_counts_the_convention_asked_for(monkeypatch: pytest.MonkeyPatch):
    import rnnspec.core.weights as w
    import rnnspec.util

    lstm = _spec(BASE.replace("cell: gru", "cell: lstm"))
    keras_need = w.memory_needed(lstm, copies=1)
    monkeypatch.setattr(rnnspec.util, "available_memory", lambda: keras_need)
    w.check_fits_memory(lstm, "x")  # the keras convention fits exactly
    with pytest.raises(WeightsError, match=r"\(565 parameters as float32"):
        w.check_fits_memory(lstm, "x", convention="torch")  # 549 + its recurrent_bias (16) tips it over


def _safetensors(header: object, payload: bytes = b"", length: int | None = None) -> bytes:
    import json

    text = json.dumps(header).encode()
    return (len(text) if length is None else length).to_bytes(8, "little") + text + payload


def _unreadable(tmp_path, raw: bytes) -> str:
    import rnnspec.core.weights as w

    path = tmp_path / "w.safetensors"
    path.write_bytes(raw)
    with pytest.raises(WeightsError) as info:
        w.load_weights_file(path)
    message = str(info.value)
    head = f"{path}: not a readable safetensors file ("
    tail = "); it may be truncated or corrupted. fix: write it again with `rnnspec build -o` or `rnnspec.save_weights`"
    assert message.startswith(head) and message.endswith(tail), message
    return message[len(head) : -len(tail)]


F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x01\x00\x00", "file shorter than the safetensors header"),
        (_safetensors({"a": F32}, b"\x00" * 8, length=10**6), "its header claims 1,000,000 bytes in a file of 77"),
        (_safetensors([1, 2]), "the header is not a JSON object"),
        (_safetensors({"a": F32}, b"\x00" * 12), "the header describes 8 bytes of tensors, the file holds 12"),
        (_safetensors({"a": 3}), "tensor 'a' has no description"),
        (_safetensors({"a": {**F32, "shape": [-2]}}, b"\x00" * 8), "tensor 'a' has a negative dimension"),
        (
            _safetensors({"a": {**F32, "shape": [3]}}, b"\x00" * 8),
            "tensor 'a': offsets 0..8 do not hold shape (3,) of F32",
        ),
        (
            _safetensors({"a": {**F32, "data_offsets": [8, 0]}}, b"\x00" * 8),
            "tensor 'a': offsets 8..0 do not hold shape (2,) of F32",
        ),
    ],
    ids=["short", "header_too_long", "not_object", "extra_bytes", "no_description", "negative", "shape", "reversed"],
)
def test_an_unreadable_safetensors_file_says_why(raw: bytes, reason: str, tmp_path):
    assert _unreadable(tmp_path, raw) == reason


def test_safetensors_dtypes_read_as_float32(tmp_path):
    import rnnspec.core.weights as w

    values = np.array([1.5, -2.25], np.float64)
    f16 = values.astype("<f2").tobytes()
    bf16 = (values.astype(np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
    header = {
        "d": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]},
        "h": {"dtype": "F16", "shape": [2], "data_offsets": [16, 20]},
        "b": {"dtype": "BF16", "shape": [1, 2], "data_offsets": [20, 24]},
        "__metadata__": {"k": "v"},
    }
    path = tmp_path / "w.safetensors"
    path.write_bytes(_safetensors(header, values.astype("<f8").tobytes() + f16 + bf16))
    loaded, metadata = w.load_weights_file(path)
    assert metadata == {"k": "v"}
    for name, shape in (("d", (2,)), ("h", (2,)), ("b", (1, 2))):
        assert loaded[name].dtype == np.float32 and loaded[name].shape == shape
        np.testing.assert_array_equal(loaded[name].ravel(), values.astype(np.float32))
    path.write_bytes(_safetensors({"i": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}, b"\x00" * 8))
    with pytest.raises(WeightsError) as info:
        w.load_weights_file(path)
    assert str(info.value).endswith(
        "tensor 'i' holds I64 values; weights are floating-point (F32, F16, BF16, F64). "
        "fix: save the model's float weights"
    )


def test_weights_larger_than_memory_are_refused_from_the_header(monkeypatch: pytest.MonkeyPatch, tmp_path):
    import rnnspec.core.weights as w
    import rnnspec.util

    path = tmp_path / "w.safetensors"
    path.write_bytes(_safetensors({"a": F32}, b"\x00" * 8))
    monkeypatch.setattr(rnnspec.util, "available_memory", lambda: 15)
    with pytest.raises(WeightsError) as info:
        w.load_weights_file(path)
    assert str(info.value) == (
        f"{path}: the weights need 8 B (twice that while read), but the machine has 15 B available. "
        "fix: free memory, or check that this is the right file"
    )
    monkeypatch.setattr(rnnspec.util, "available_memory", lambda: 16)
    assert w.load_weights_file(path)[0]["a"].shape == (2,)
