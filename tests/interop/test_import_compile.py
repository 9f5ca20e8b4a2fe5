"""A Keras file's compile settings become the imported spec's ``training`` section; what the spec cannot say is
named in the import's notes.

Every file is saved by the installed Keras 3 after ``model.compile(...)`` (``.keras``: ``compile_config``;
``.h5``: the ``training_config`` attribute), except the Keras 2 case, whose ``training_config`` is written the
way Keras 2 wrote it (``optimizer_config``, ``lr``, ``decay``). The expected values are the arguments given to
``compile``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest

pytest.importorskip("rnnspec_backends.keras.model", reason="the keras backend needs the keras extra")
import h5py
import keras
import yaml

import rnnspec
from rnnspec.cli import main
from rnnspec.runtime.importing import import_model

L = keras.layers


def _model(activation: str = "sigmoid", units: int = 1) -> keras.Model:
    return keras.Sequential([keras.Input((5, 3)), L.LSTM(4), L.Dense(units, activation)])


def _saved(tmp_path: Path, fmt: str, model: keras.Model | None = None, **compile_args: object) -> Path:
    model = model or _model()
    if compile_args:
        model.compile(**compile_args)
    path = tmp_path / f"model.{fmt}"
    model.save(path)
    return path


def _imported(path: Path) -> tuple[rnnspec.ModelSpec, list[str]]:
    notes: list[str] = []
    spec, _ = import_model(path, notes=notes)
    return spec, notes


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_rmsprop_with_its_settings_loss_and_metrics_are_imported(tmp_path: Path, fmt: str) -> None:
    """The issue's case: a model compiled with rmsprop; `train` used to suggest adam (no training section)."""
    path = _saved(
        tmp_path,
        fmt,
        optimizer=keras.optimizers.RMSprop(learning_rate=0.01, rho=0.8, momentum=0.5, centered=True),
        loss="binary_crossentropy",
        metrics=["accuracy", "mae"],
    )
    spec, notes = _imported(path)
    assert spec.training is not None
    optimizer = spec.training.optimizer
    assert optimizer.name == "rmsprop"
    assert (optimizer.learning_rate, optimizer.rho, optimizer.momentum, optimizer.centered) == (0.01, 0.8, 0.5, True)
    assert spec.training.loss.name == "binary_crossentropy" and not spec.training.loss.from_logits
    assert spec.training.metrics == ["accuracy", "mae"]
    assert notes == []


def test_adam_settings_a_loss_object_and_keras_aliases(tmp_path: Path) -> None:
    path = _saved(
        tmp_path,
        "keras",
        _model("linear"),
        optimizer=keras.optimizers.Adam(2e-3, beta_1=0.8, beta_2=0.99, epsilon=1e-6, amsgrad=True, clipnorm=1.5),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=["acc", keras.metrics.RootMeanSquaredError()],
    )
    spec, notes = _imported(path)
    assert spec.training is not None
    opt = spec.training.optimizer
    assert opt.name == "adam"
    assert (opt.learning_rate, opt.beta_1, opt.beta_2, opt.epsilon, opt.amsgrad, opt.clipnorm) == (
        2e-3,
        0.8,
        0.99,
        1e-6,
        True,
        1.5,
    )
    assert spec.training.loss.from_logits
    assert spec.training.metrics == ["accuracy", "rmse"]
    assert notes == []


def test_sgd_and_huber_note_that_keras_does_not_store_delta(tmp_path: Path) -> None:
    path = _saved(
        tmp_path,
        "keras",
        _model("linear"),
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
        loss=keras.losses.Huber(),
        metrics=["mse"],
    )
    spec, notes = _imported(path)
    assert spec.training is not None
    opt = spec.training.optimizer
    assert (opt.name, opt.learning_rate, opt.momentum, opt.nesterov) == ("sgd", 0.1, 0.9, True)
    assert spec.training.loss.name == "huber" and spec.training.metrics == ["mse"]
    assert any("delta" in note for note in notes)


def test_settings_the_spec_cannot_express_are_named(tmp_path: Path) -> None:
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=100, decay_rate=0.9)
    path = _saved(
        tmp_path,
        "keras",
        optimizer=keras.optimizers.Adam(schedule, weight_decay=0.004),
        loss=keras.losses.BinaryCrossentropy(label_smoothing=0.1),
        metrics=["accuracy", keras.metrics.AUC()],
    )
    spec, notes = _imported(path)
    assert spec.training is not None and spec.training.optimizer.name == "adam"
    assert spec.training.optimizer.learning_rate == 0.01  # the schedule's initial rate, said so
    text = "\n".join(notes)
    assert "weight_decay=0.004" in text
    assert "ExponentialDecay" in text
    assert "label_smoothing=0.1" in text
    assert "AUC" in text
    assert spec.training.metrics == ["accuracy"]


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_an_unsupported_loss_and_optimizer_import_the_model_and_say_what_was_left_out(tmp_path: Path, fmt: str) -> None:
    path = _saved(tmp_path, fmt, _model("softmax", 3), optimizer="nadam", loss="kl_divergence")
    spec, notes = _imported(path)
    assert spec.training is None
    assert spec.recurrent[0].units == 4
    text = "\n".join(notes)
    assert "optimizer Nadam left out" in text
    assert "loss kl_divergence left out" in text
    assert "no `training` section" in text


def test_an_unsupported_optimizer_keeps_the_loss_and_says_the_default_applies(tmp_path: Path) -> None:
    path = _saved(tmp_path, "keras", optimizer="adagrad", loss="mse")
    spec, notes = _imported(path)
    assert spec.training is not None and spec.training.loss.name == "mse"
    assert any("Adagrad left out" in n and "default (rmsprop)" in n for n in notes)


def test_settings_the_spec_refuses_for_this_model_are_noted_not_fatal(tmp_path: Path) -> None:
    """Keras compiles from_logits=True over a sigmoid head; the spec refuses that pairing: no training section,
    the reason noted, the model imported."""
    path = _saved(tmp_path, "keras", optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    spec, notes = _imported(path)
    assert spec.training is None
    assert any("from_logits" in note and "no `training` section" in note for note in notes)


def test_an_uncompiled_model_has_no_training_section_and_no_notes(tmp_path: Path) -> None:
    spec, notes = _imported(_saved(tmp_path, "keras"))
    assert spec.training is None and notes == []


def test_a_keras2_training_config_is_read(tmp_path: Path) -> None:
    """Keras 2 wrote ``optimizer_config`` with ``lr`` and ``decay`` (0.0: no effect) and the metric ``acc``."""
    path = _saved(tmp_path, "h5")
    keras2 = {
        "optimizer_config": {
            "class_name": "RMSprop",
            "config": {"name": "RMSprop", "lr": 0.0020000000949949026, "rho": 0.9, "decay": 0.0, "epsilon": 1e-07},
        },
        "loss": "binary_crossentropy",
        "metrics": ["acc"],
        "weighted_metrics": None,
        "loss_weights": None,
        "sample_weight_mode": None,
    }
    with h5py.File(path, "r+") as h5:
        h5.attrs["training_config"] = json.dumps(keras2)
    spec, notes = _imported(path)
    assert spec.training is not None
    assert (spec.training.optimizer.name, spec.training.optimizer.learning_rate) == ("rmsprop", 0.002)
    assert spec.training.metrics == ["accuracy"]
    assert notes == []
    keras2["optimizer_config"]["config"]["decay"] = 1e-4
    with h5py.File(path, "r+") as h5:
        h5.attrs["training_config"] = json.dumps(keras2)
    assert any("decay=0.0001" in note for note in _imported(path)[1])


def test_the_command_writes_the_training_section_and_prints_the_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _saved(
        tmp_path,
        "keras",
        optimizer=keras.optimizers.RMSprop(learning_rate=0.005),
        loss="binary_crossentropy",
        metrics=["accuracy", keras.metrics.AUC()],
    )
    out = tmp_path / "out"
    assert main(["import", str(path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "note: metrics left out: AUC" in printed
    written = yaml.safe_load((out / "spec.yaml").read_text())
    assert written["training"]["optimizer"] == {"name": "rmsprop", "learning_rate": 0.005}
    assert written["training"]["loss"] == "binary_crossentropy" or written["training"]["loss"] == {
        "name": "binary_crossentropy"
    }
    assert rnnspec.load_spec(out / "spec.yaml").training.metrics == ["accuracy"]
