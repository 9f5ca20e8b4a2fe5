"""Data from files for every kind of model: regression targets, per-step labels, float sequences, .npz x/y."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnspec
from rnnspec import RnnspecError
from tests.conftest import SPECS


def make(input_, recurrent, head, loss, metrics=()):
    data = {"rnnspec": 1.1, "name": "d", "input": input_, "recurrent": recurrent, "head": head}
    if "vocab_size" in input_:
        data["embedding"] = {"output_dim": 4, "mask_zero": True}
    data["training"] = {"loss": loss, "metrics": list(metrics)}
    return rnnspec.spec_from_dict(data)


TEXT_REGRESSOR = make({"vocab_size": 50}, [{"cell": "lstm", "units": 4}], {"units": 1}, "mse", ["mae"])
TAGGER = make(
    {"vocab_size": 50},
    [{"cell": "gru", "units": 4, "return_sequences": True}],
    {"units": 3, "activation": "softmax"},
    "sparse_categorical_crossentropy",
)
SEQ_REGRESSOR = make({"features": 2, "mask_value": -9.0}, [{"cell": "lstm", "units": 4}], {"units": 1}, "huber")


def test_numeric_csv_labels_are_targets_not_classes(tmp_path):
    # the defect of issue 7: labels 1.0-5.0 with mse used to become classes 0..4
    path = tmp_path / "ratings.csv"
    path.write_text("text,label\ngood film,5.0\nbad,1.0\nok i guess,3.5\n", encoding="utf-8")
    data = rnnspec.load_data(TEXT_REGRESSOR, path)
    assert data.y.dtype == np.float32
    assert data.y.tolist() == [5.0, 1.0, 3.5]
    assert data.classes is None


def test_a_class_name_under_a_regression_loss_is_located(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("text,label\ngood film,5.0\nbad,terrible\n", encoding="utf-8")
    with pytest.raises(RnnspecError) as info:
        rnnspec.load_data(TEXT_REGRESSOR, path)
    text = str(info.value)
    assert f"{path}:3" in text and "'terrible'" in text and "loss mse needs numeric targets" in text


def test_a_fractional_label_under_a_class_loss_is_refused(tmp_path):
    spec = make(
        {"vocab_size": 50}, [{"cell": "lstm", "units": 4}], {"units": 1, "activation": "sigmoid"}, "binary_crossentropy"
    )
    path = tmp_path / "f.jsonl"
    path.write_text('{"text": "a b", "label": 0.5}\n', encoding="utf-8")
    with pytest.raises(RnnspecError, match=r"f.jsonl:1[\s\S]*use `loss: mse`"):
        rnnspec.load_data(spec, path)


def test_per_step_labels_from_jsonl_are_padded_like_the_inputs(tmp_path):
    path = tmp_path / "tags.jsonl"
    rows = [
        {"text": "the dog runs", "label": ["DET", "NOUN", "VERB"]},
        {"text": "dogs run", "label": ["NOUN", "VERB"]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    data = rnnspec.load_data(TAGGER, path)
    assert data.classes == ("DET", "NOUN", "VERB")
    assert data.x.shape == data.y.shape == (2, 3)
    assert data.y.tolist() == [[0, 1, 2], [0, 1, 2]]  # row 2 pre-padded: its padding label 0 is masked
    assert (data.x[1, 0] == 0) and (data.x[1, 1:] != 0).all()


def test_per_step_labels_from_a_csv_cell(tmp_path):
    path = tmp_path / "tags.csv"
    path.write_text("text,label\nthe dog runs,0 1 2\nruns,2\n", encoding="utf-8")
    data = rnnspec.load_data(TAGGER, path)
    assert data.y.tolist() == [[0, 1, 2], [0, 0, 2]]


def test_per_step_label_count_must_match_the_tokens(tmp_path):
    path = tmp_path / "tags.jsonl"
    path.write_text('{"text": "a b", "label": [0, 1]}\n{"text": "a b c", "label": [0, 1]}\n', encoding="utf-8")
    with pytest.raises(RnnspecError, match=r"tags.jsonl:2: the text has 3 token\(s\) but 2 per-step label"):
        rnnspec.load_data(TAGGER, path)


def test_float_sequences_from_jsonl_are_padded_with_the_mask_value(tmp_path):
    path = tmp_path / "series.jsonl"
    lines = [{"x": [[1, 2], [3, 4], [5, 6]], "y": 0.5}, {"x": [[7, 8]], "y": -1}]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    data = rnnspec.load_data(SEQ_REGRESSOR, path)
    assert data.x.dtype == np.float32 and data.x.shape == (2, 3, 2)
    assert data.x[1].tolist() == [[-9.0, -9.0], [-9.0, -9.0], [7.0, 8.0]]
    assert data.y.tolist() == [0.5, -1.0]


def test_float_sequences_with_per_step_targets_and_renamed_keys(tmp_path):
    spec = make({"features": 1}, [{"cell": "gru", "units": 3, "return_sequences": True}], {"units": 1}, "mae", ["rmse"])
    path = tmp_path / "s.jsonl"
    path.write_text('{"obs": [1, 2, 3], "target": [0.1, 0.2, 0.3]}\n{"obs": [4], "target": [0.4]}\n', "utf-8")
    data = rnnspec.load_data(spec, path, text_column="obs", label_column="target")
    assert data.x.shape == (2, 3, 1) and data.y.shape == (2, 3)
    np.testing.assert_allclose(data.y[1], [0.0, 0.0, 0.4], atol=1e-7)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"x": [[1, 2, 3]], "y": 1}', "step 0 of 'x' does not fit input.features: 2"),
        ('{"x": [], "y": 1}', "'x' must be a non-empty list of steps"),
        ('{"x": [[1, 2]]}', "no key 'y'"),
        ('{"x": [[1, "a"]], "y": 1}', "does not fit input.features"),
        ('{"x": [[1, 2]], "y": "high"}', "not a number"),
    ],
)
def test_bad_sequence_lines_are_located(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"x": [[0.5, 0.5]], "y": 1}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(RnnspecError) as info:
        rnnspec.load_data(SEQ_REGRESSOR, path)
    assert f"{path}:2" in str(info.value) and message in str(info.value)


def test_npz_with_x_and_y(tmp_path):
    x = np.random.default_rng(0).normal(size=(5, 4, 2)).astype(np.float32)
    y = np.arange(5, dtype=np.float64)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = rnnspec.load_data(SEQ_REGRESSOR, tmp_path / "d.npz")
    assert np.array_equal(data.x, x) and data.y.dtype == np.float32 and data.y.tolist() == y.tolist()
    np.savez(tmp_path / "ids.npz", x=np.ones((3, 7), dtype=np.int64), y=np.array([0.5, 1.5, 2.0]))
    with pytest.raises(RnnspecError, match="fractional numbers, but the loss needs class ids"):
        rnnspec.load_data(TAGGER, tmp_path / "ids.npz")
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(RnnspecError, match=r"np.savez\('data.npz', x=x, y=y\)"):
        rnnspec.load_data(SEQ_REGRESSOR, tmp_path / "x.npy")


def test_npz_object_arrays_are_not_unpickled(tmp_path):
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = [1.0], [1.0, 2.0]
    np.savez(tmp_path / "obj.npz", x=ragged, y=np.zeros(2))
    with pytest.raises(RnnspecError, match="plain numeric arrays"):
        rnnspec.load_data(SEQ_REGRESSOR, tmp_path / "obj.npz")


@pytest.mark.parametrize("stem", ["tf_text_classification", "bilstm_dropout", "weather_regression", "pos_tagger"])
def test_new_shipped_specs_load_their_shipped_data(stem):
    spec = rnnspec.load_spec(SPECS / f"{stem}.yaml")
    data = rnnspec.load_data(spec, base_dir=SPECS)
    assert len(data) >= 300
    if spec.output_per_step:
        assert data.y.shape == data.x.shape[:2] and data.y.max() < spec.output_units
    elif spec.training.loss.name == "mse":
        assert data.y.dtype == np.float32 and data.x.dtype == np.float32
    else:
        assert set(np.unique(data.y).tolist()) == {0, 1}


def test_npz_ids_too_large_for_int32_are_refused_not_wrapped(tmp_path):
    """An int64 id of 2**32 + 5 would become 5 if it were cast first: the range is checked on the values saved."""
    x = np.ones((2, 7), dtype=np.int64)
    x[1, 3] = 2**32 + 5
    np.savez(tmp_path / "ids.npz", x=x, y=np.zeros((2, 7), dtype=np.int64))
    with pytest.raises(RnnspecError, match=r"token id 4294967301 does not fit the spec's input.vocab_size"):
        rnnspec.load_data(TAGGER, tmp_path / "ids.npz")
