"""Edited checkpoints are validated like hostile input: every field's type, range and shape is checked before
anything uses it, and a resume refuses what does not fit the run. Each checkpoint here is a real one, saved by a
tiny run, then edited the way an attacker (or a broken disk) would."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnspec
from rnnspec.cli import main
from rnnspec.lang.errors import RnnspecError
from rnnspec.runtime.checkpoint import check_fits, load_checkpoint, save_checkpoint
from tests.fuzzing import mutate, mutations, read_within_budget
from tests.parity import backend_or_skip

SPEC = """rnnspec: 1.1
name: tiny
input: {features: 3, seq_len: 5}
recurrent: [{cell: gru, units: 4, dropout: 0.2}]
head: {units: 1, activation: sigmoid}
training: {optimizer: adam, loss: binary_crossentropy, metrics: [accuracy]}
"""


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(24, 5, 3)).astype(np.float32), rng.integers(0, 2, size=(24, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real checkpoints of a 2-epoch torch run: at an epoch's end and within an epoch (after 2 of 3 batches)."""
    backend_or_skip("torch")
    folder = tmp_path_factory.mktemp("checkpoints")
    x, y = _data()
    spec = rnnspec.loads_spec(SPEC)
    out: dict[str, Path] = {}
    model = rnnspec.build(spec, "torch", seed=0)
    rnnspec.fit(
        model, x, y, epochs=2, batch_size=8, seed=3, on_checkpoint=lambda c: save_checkpoint(c, folder / "epoch.npz")
    )
    out["epoch"] = folder / "epoch.npz"

    def within(c: Any) -> None:
        if c.steps_done:
            save_checkpoint(c, folder / "within.npz")

    model = rnnspec.build(spec, "torch", seed=0)
    rnnspec.fit(model, x, y, epochs=1, batch_size=8, seed=3, on_checkpoint=within, checkpoint_every=2)
    out["within"] = folder / "within.npz"
    return out


def _edited(source: Path, target: Path, edit: Callable[[dict[str, Any], dict[str, np.ndarray]], None]) -> Path:
    with np.load(source) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = json.loads(arrays.pop("meta").tobytes())
    edit(meta, arrays)
    text = meta if isinstance(meta, str) else json.dumps(meta)
    np.savez(target, meta=np.frombuffer(text.encode(), np.uint8), **arrays)
    return target


def _resume(path: Path, epochs: int = 3) -> dict[str, Any]:
    x, y = _data()
    model = rnnspec.build(rnnspec.loads_spec(SPEC), "torch", seed=1)
    return rnnspec.fit(model, x, y, epochs=epochs, batch_size=8, seed=3, resume=load_checkpoint(path))


def _set(key: str, value: Any) -> Callable[[dict[str, Any], dict[str, np.ndarray]], None]:
    return lambda meta, arrays: meta.__setitem__(key, value)


def _rename(old: str, new: str) -> Callable[[dict[str, Any], dict[str, np.ndarray]], None]:
    return lambda meta, arrays: arrays.__setitem__(new, arrays.pop(old))


def _drop(name: str) -> Callable[[dict[str, Any], dict[str, np.ndarray]], None]:
    return lambda meta, arrays: arrays.pop(name)


def _history_of(epochs: int) -> Callable[[dict[str, Any], dict[str, np.ndarray]], None]:
    def edit(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        meta["epochs_done"] = epochs

    return edit


REFUSED_ON_LOAD = {
    "four-part slot key": ("epoch", _rename("trainer/slot/0/m", "trainer/slot/0/m/x"), "trainer/slot/0/m/x"),
    "non-numeric slot index": ("epoch", _rename("trainer/slot/0/m", "trainer/slot/x/m"), "trainer/slot/x/m"),
    "epochs_done Infinity": ("epoch", lambda m, a: None, "Infinity"),  # written below as text
    "epochs_done negative": ("epoch", _set("epochs_done", -3), "epochs_done is -3"),
    "epochs_done a string": ("epoch", _set("epochs_done", "2"), 'epochs_done is "2"'),
    "epochs_done beyond its history": ("epoch", _history_of(9), "history.loss holds"),
    "seed out of range": ("epoch", lambda m, a: m["fingerprint"].__setitem__("seed", 2**70), "fingerprint.seed"),
    "history not an object": ("epoch", _set("history", [1, 2]), "history is [1, 2]"),
    "a string array": ("epoch", lambda m, a: a.__setitem__("trainer/iterations", np.array("x")), "trainer/iterations"),
    "no carry within an epoch": (
        "within",
        lambda m, a: [a.pop(k) for k in list(a) if k.startswith("carry/")],
        "holds no carry arrays",
    ),
    "a missing carry array": ("within", _drop("carry/loss_sums"), "carry/loss_sums"),
    "carry steps not steps_done": ("within", lambda m, a: a.__setitem__("carry/steps", np.array(7)), "carry/steps"),
    "a stray array": ("epoch", lambda m, a: a.__setitem__("other", np.zeros(2)), "'other'"),
}


@pytest.mark.parametrize("case", REFUSED_ON_LOAD, ids=list(REFUSED_ON_LOAD))
def test_an_edited_checkpoint_is_refused_when_read_naming_the_field(case: str, saved, tmp_path: Path):
    which, edit, named = REFUSED_ON_LOAD[case]
    path = _edited(saved[which], tmp_path / "c.npz", edit)
    if case == "epochs_done Infinity":
        with np.load(path) as npz:
            arrays = {name: npz[name] for name in npz.files}
        text = arrays.pop("meta").tobytes().decode().replace('"epochs_done": 2', '"epochs_done": Infinity')
        np.savez(path, meta=np.frombuffer(text.encode(), np.uint8), **arrays)
    with pytest.raises(RnnspecError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a readable rnnspec checkpoint") and named in message, message
    assert "fix:" in message


def test_meta_nested_100000_deep_is_refused_without_recursing(saved, tmp_path: Path):
    deep = "[" * 100_000 + "]" * 100_000
    path = _edited(saved["epoch"], tmp_path / "c.npz", lambda m, a: None)
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files if name != "meta"}
    np.savez(path, meta=np.frombuffer(('{"format": ' + deep + "}").encode(), np.uint8), **arrays)
    with pytest.raises(RnnspecError, match="nested 100,001 deep"):
        load_checkpoint(path)


REFUSED_ON_RESUME = {
    "an int32 slot": (
        "epoch",
        lambda m, a: a.__setitem__("trainer/slot/0/m", a["trainer/slot/0/m"].astype(np.int32)),
        "trainer/slot/0/m is int32",
    ),
    "a missing iterations": ("epoch", _drop("trainer/iterations"), "trainer/iterations is missing"),
    "a missing slot": ("epoch", _drop("trainer/slot/1/v"), "trainer/slot/1/v is missing"),
    "a slot of another optimizer": ("epoch", _rename("trainer/slot/1/v", "trainer/slot/1/a"), "trainer/slot/1/a"),
    "a wrong weight shape": (
        "epoch",
        lambda m, a: a.__setitem__("weights/head/kernel", np.zeros((5, 1), np.float32)),
        "weights/head/kernel is float32 (5, 1), expected float32 (4, 1)",
    ),
}


@pytest.mark.parametrize("case", REFUSED_ON_RESUME, ids=list(REFUSED_ON_RESUME))
def test_a_checkpoint_that_does_not_fit_the_run_is_refused_on_resume(case: str, saved, tmp_path: Path):
    which, edit, named = REFUSED_ON_RESUME[case]
    path = _edited(saved[which], tmp_path / "c.npz", edit)
    with pytest.raises(RnnspecError) as info:
        _resume(path)
    assert "cannot resume: the checkpoint does not fit" in str(info.value) and named in str(info.value)


def test_the_unedited_checkpoints_resume(saved, tmp_path: Path):
    assert len(_resume(saved["epoch"], 3)["loss"]) == 3
    assert len(_resume(saved["within"], 2)["loss"]) == 2


def test_a_nan_checkpoint_is_refused_before_the_runs_good_weights_are_touched(saved, tmp_path: Path, capsys):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC.replace("training: {", "training: {epochs: 1, "))
    x, y = _data()
    np.savez(tmp_path / "data.npz", x=x, y=y[:, 0])
    run = tmp_path / "run"
    train = ["train", str(spec), "-b", "torch", "--data", str(tmp_path / "data.npz"), "-o", str(run)]
    assert main(train) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}

    def poison(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        arrays["weights/head/kernel"] = np.full_like(arrays["weights/head/kernel"], np.nan)
        arrays["weights/head/kernel"][0, 0] = 1.0

    _edited(run / "checkpoint.npz", run / "checkpoint.npz", poison)
    before["checkpoint.npz"] = (run / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert main([*train, "--epochs", "2", "--resume"]) == 1
    err = capsys.readouterr().err
    assert "1 weight(s) hold NaN or infinite values: head/kernel (3 of 4 values)" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_checkpoint_made_in_memory_gets_the_same_checks(saved):
    checkpoint = load_checkpoint(saved["epoch"])
    checkpoint.epochs_done = -3
    x, y = _data()
    model = rnnspec.build(rnnspec.loads_spec(SPEC), "torch", seed=1)
    with pytest.raises(RnnspecError, match="epochs_done is -3, expected a whole number"):
        rnnspec.fit(model, x, y, epochs=4, batch_size=8, resume=checkpoint)


def test_a_keras_checkpoint_is_checked_against_the_keras_trainer(tmp_path: Path):
    backend_or_skip("keras")
    x, y = _data()
    spec = rnnspec.loads_spec(SPEC)
    path = tmp_path / "keras.npz"
    model = rnnspec.build(spec, "keras", seed=0)
    rnnspec.fit(model, x, y, epochs=1, batch_size=8, seed=3, on_checkpoint=lambda c: save_checkpoint(c, path))
    with np.load(path) as npz:
        names = [n for n in npz.files if n.startswith("trainer/optimizer/")]
    slot = max(names, key=lambda n: int(n.split("/")[-1]))  # a slot (0 is the step count)

    def to_int(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        arrays[slot] = arrays[slot].astype(np.int32)

    edited = _edited(path, tmp_path / "edited.npz", to_int)
    with pytest.raises(RnnspecError, match=f"{slot[len('trainer/') :]} is int32"):
        rnnspec.fit(rnnspec.build(spec, "keras", seed=1), x, y, epochs=2, batch_size=8, resume=load_checkpoint(edited))
    missing = _edited(path, tmp_path / "missing.npz", _drop(slot))
    with pytest.raises(RnnspecError, match="is missing"):
        rnnspec.fit(rnnspec.build(spec, "keras", seed=1), x, y, epochs=2, batch_size=8, resume=load_checkpoint(missing))


def test_an_array_header_declaring_more_than_is_stored_is_refused_before_allocating(saved, tmp_path: Path):
    """A 1 KB checkpoint whose slot declares shape (10**11,) float32 (400 GB) is refused from its header."""
    import io
    import zipfile

    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(saved["epoch"]) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.startswith("trainer/"):
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    header, {"descr": "<f4", "fortran_order": False, "shape": (10**11,)}
                )
                data = header.getvalue() + b"\0" * 4
            target.writestr(info, data)
    with pytest.raises(RnnspecError, match=r"header does not match its data"):
        load_checkpoint(path)


# The fuzzer (issue 20): mutated bytes of a real checkpoint, and arbitrary JSON in its meta fields, are read or
# refused with an RnnspecError (never another exception, never an allocation over the budget), then checked
# against the run the unedited checkpoint came from.
_FUZZ = settings(
    max_examples=int(os.environ.get("RNNSPEC_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _load_and_fit(template: Any) -> Callable[[Path], object]:
    def read(path: Path) -> object:
        checkpoint = load_checkpoint(path)
        check_fits(checkpoint, template.weights, template.trainer_state)
        return checkpoint

    return read


@_FUZZ
@given(data=st.data())
def test_fuzz_mutated_checkpoint_bytes(data, saved, tmp_path: Path) -> None:
    which = data.draw(st.sampled_from(["epoch", "within"]))
    raw = saved[which].read_bytes()
    path = tmp_path / "m.npz"
    path.write_bytes(mutate(raw, data.draw(mutations(len(raw)))))
    read_within_budget(_load_and_fit(load_checkpoint(saved[which])), path)


_LEAVES = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8)
_JSON = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)


@_FUZZ
@given(data=st.data())
def test_fuzz_arbitrary_checkpoint_meta_values(data, saved, tmp_path: Path) -> None:
    which = data.draw(st.sampled_from(["epoch", "within"]))
    field = data.draw(st.sampled_from(["format", "epochs_done", "steps_done", "history", "fingerprint", "extra"]))
    value = data.draw(_JSON)

    def edit(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        meta[field] = value

    path = _edited(saved[which], tmp_path / "m.npz", edit)
    read_within_budget(_load_and_fit(load_checkpoint(saved[which])), path)
