"""Checkpoints: the state of a training run at the end of an epoch (or after some batches of one), enough to
continue it exactly.

A checkpoint holds the canonical weights, the trainer's state (the optimizer's step count and slots,
the dropout generators' states: see each backend's ``Trainer.state``), the history so far, and a
fingerprint of what the run trains: the spec (without ``epochs``), the training settings, a hash of
the data, the seed and the backend. ``fit(..., resume=checkpoint)`` refuses a checkpoint whose
fingerprint differs, naming what differs. The data order needs no saving: each epoch's permutation
comes from the seed, so resuming replays the permutations of the epochs already done. A checkpoint
within an epoch also holds the epoch's running sums and batch losses (``epoch_carry``): the rest of
the epoch is then trained on the rest of its batches and reports the epoch's figures.

On disk it is one ``.npz`` (``np.savez``, written atomically; read with ``allow_pickle=False``):
``meta`` (UTF-8 JSON: format, epochs and steps done, history, fingerprint), ``weights/NAME``,
``trainer/KEY`` and ``carry/KEY`` arrays.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.data.npy import npy_header
from rnnspec.data.tokenizer import DataError
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.spec import ModelSpec, TrainingSpec

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "check_checkpoint",
    "check_fits",
    "fingerprint",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "rnnspec-checkpoint/1"


@dataclass
class Checkpoint:
    """The state after ``epochs_done`` epochs (see the module docstring)."""

    epochs_done: int
    history: dict[str, Any]
    weights: dict[str, np.ndarray]
    trainer_state: dict[str, np.ndarray]
    fingerprint: dict[str, Any]
    epoch_carry: dict[str, np.ndarray] | None = None
    """Within an epoch (``fit(checkpoint_every=K)``): the next epoch's batches done (``steps``), their losses and
    the epoch's running sums; None at an epoch's end."""

    @property
    def steps_done(self) -> int:
        """Batches of epoch ``epochs_done + 1`` done (0 at an epoch's end)."""
        return 0 if self.epoch_carry is None else int(self.epoch_carry["steps"])

    @property
    def position(self) -> str:
        """Where the run stands, in words: ``epoch 2`` or ``epoch 2 and 40 batches``."""
        steps = self.steps_done
        return f"epoch {self.epochs_done}" + (f" and {steps} batch{'es' if steps != 1 else ''}" if steps else "")

    def differences(self, now: dict[str, Any]) -> list[str]:
        """What differs between the run that wrote this checkpoint and ``now`` (empty when they match)."""
        return _differences(self.fingerprint, now, "")


def _data_hash(arrays: list[Any]) -> str:
    """A hash of the values (rows read from a file are hashed chunk by chunk, as they are read)."""
    digest = hashlib.sha256()
    for arr in arrays:
        digest.update(f"{np.dtype(arr.dtype).str}{tuple(arr.shape)}".encode())
        if hasattr(arr, "content_key"):  # rows made from a file: the file's hash and how they are made
            digest.update(arr.content_key().encode())
            continue
        chunks = arr.chunks() if hasattr(arr, "chunks") else [np.asarray(arr)]
        for chunk in chunks:
            digest.update(np.ascontiguousarray(chunk).tobytes())
    return digest.hexdigest()[:16]


def fingerprint(
    spec: ModelSpec, training: TrainingSpec, data: list[np.ndarray], seed: int, backend: str
) -> dict[str, Any]:
    """What must be the same to continue a run: spec, training settings but ``epochs``, data, seed, backend."""
    spec_dict = spec.to_dict()
    spec_dict.pop("training", None)
    settings = training.model_dump(mode="json", exclude={"epochs", "data"})
    return {
        "spec": spec_dict,
        "training": settings,
        "data": {"samples": len(data[0]), "sha256": _data_hash(data)},
        "seed": int(seed),
        "backend": backend,
    }


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _differences(old: Any, new: Any, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in old or key not in new:
                out.append(f"{where}: {'absent' if key not in old else _short(old[key])} in the checkpoint, "
                           f"{'absent' if key not in new else _short(new[key])} now")  # fmt: skip
            else:
                out += _differences(old[key], new[key], where)
        return out
    if old != new:
        return [f"{path}: {_short(old)} in the checkpoint, {_short(new)} now"]
    return []


def save_checkpoint(checkpoint: Checkpoint, path: Path) -> None:
    """Write ``checkpoint`` to ``path`` atomically (the previous checkpoint stays until the new one is whole)."""
    from rnnspec.util import write_bytes_atomic

    meta = {
        "format": CHECKPOINT_FORMAT,
        "epochs_done": checkpoint.epochs_done,
        "steps_done": checkpoint.steps_done,
        "history": checkpoint.history,
        "fingerprint": checkpoint.fingerprint,
    }
    arrays: dict[str, np.ndarray] = {"meta": np.frombuffer(json.dumps(meta, allow_nan=False).encode(), np.uint8)}
    arrays.update({f"weights/{k}": np.asarray(v) for k, v in checkpoint.weights.items()})
    arrays.update({f"trainer/{k}": np.asarray(v) for k, v in checkpoint.trainer_state.items()})
    arrays.update({f"carry/{k}": np.asarray(v) for k, v in (checkpoint.epoch_carry or {}).items()})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())


MAX_CHECKPOINT_BYTES = 16 * 1024**3
"""Largest checkpoint read (its arrays uncompressed), checked before reading."""


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; a damaged, edited or foreign file is an RnnspecError.

    Every field is checked by :func:`_validated` before anything uses it (see docs/safety.md)."""
    where = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
            if total > MAX_CHECKPOINT_BYTES:
                raise RnnspecError(f"{where}: the checkpoint claims {total:,} bytes; not a checkpoint rnnspec wrote")
            for info in archive.infolist():  # each array's header against its stored bytes, before NumPy allocates
                _check_header(archive, info, where)
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        if "meta" not in arrays:
            raise ValueError("it has no meta")
        meta = _parse_meta(arrays.pop("meta"))
    except RnnspecError:
        raise
    except FileNotFoundError:
        raise RnnspecError(f"{where}: no such checkpoint") from None
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, TypeError, UnicodeDecodeError, EOFError) as exc:
        raise RnnspecError(
            f"{where}: not a readable rnnspec checkpoint ({type(exc).__name__}: {exc}); it may be truncated or "
            "damaged. fix: start the run afresh with --overwrite"
        ) from None
    return _validated(meta, arrays, where)


def _check_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> None:
    try:
        with archive.open(info) as member:
            npy_header(member, info.file_size, info.filename)
    except DataError as exc:
        received = f" ({exc.received})" if exc.received else ""
        raise RnnspecError(
            f"{where}: not a readable rnnspec checkpoint: array {info.filename.removesuffix('.npy')}: "
            f"{exc.message}{received}; it was edited or damaged. fix: resume from an unedited checkpoint, or start "
            "the run afresh with --overwrite"
        ) from None


MAX_META_DEPTH = 64
"""Deepest nesting of lists and objects read in a checkpoint's meta JSON (rnnspec writes about 8)."""
MAX_EPOCHS = 10**7
"""Most epochs a checkpoint may claim."""
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[0-9]{1,9})?(/[A-Za-z_][A-Za-z0-9_]*)?")
"""An array name after its ``weights/``, ``trainer/`` or ``carry/`` prefix: ``iterations``, ``seed/0``,
``slot/3/m``, ``metric/accuracy`` (a weight name is checked against the model instead)."""


def _json_depth(raw: str) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON text (strings skipped), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for char in raw:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"the meta holds {name}, which JSON does not have and rnnspec never writes")


def _parse_meta(raw: np.ndarray) -> Any:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"its meta is a {raw.dtype} array of shape {raw.shape}, not UTF-8 bytes")
    text = raw.tobytes().decode()
    depth = _json_depth(text)
    if depth > MAX_META_DEPTH:
        raise ValueError(f"its meta JSON is nested {depth:,} deep (at most {MAX_META_DEPTH} is read)")
    return json.loads(text, parse_constant=_no_constant)


class _Invalid(Exception):
    """One field of a checkpoint that is not what rnnspec writes."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _validated(meta: Any, arrays: dict[str, np.ndarray], where: str) -> Checkpoint:
    """The checkpoint held by ``meta`` and ``arrays``, every field's type, range and shape checked first; else
    an RnnspecError naming the field, what it holds and what rnnspec writes there."""
    try:
        checkpoint = _checked(meta, arrays)
    except _Invalid as exc:
        raise RnnspecError(
            f"{where}: not a readable rnnspec checkpoint: {exc}; it was edited or damaged. fix: resume from an "
            "unedited checkpoint, or start the run afresh with --overwrite"
        ) from None
    from rnnspec.core.weights import check_finite

    for part, what in ((checkpoint.weights, "weight"), (checkpoint.trainer_state, "optimizer array")):
        try:
            check_finite(part, where, what)
        except RnnspecError as exc:  # a NaN run is never resumed: its weights would train to NaN
            raise RnnspecError(
                str(exc).split("; a model with them")[0] + "; training from them gives NaN. fix: resume from a "
                "checkpoint of an earlier, finite epoch, or start the run afresh with --overwrite"
            ) from None
    return checkpoint


def _checked(meta: Any, arrays: dict[str, np.ndarray]) -> Checkpoint:
    if not isinstance(meta, dict):
        raise _Invalid(f"its meta is a JSON {type(meta).__name__}, expected an object")
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise _Invalid(f"format {_short(meta.get('format'))}, expected {CHECKPOINT_FORMAT!r}")
    epochs = meta.get("epochs_done")
    if not _is_int(epochs) or not 0 <= epochs <= MAX_EPOCHS:
        raise _Invalid(f"epochs_done is {_short(epochs)}, expected a whole number of epochs from 0 to {MAX_EPOCHS:,}")
    steps = meta.get("steps_done", 0)
    if not _is_int(steps) or not 0 <= steps <= 10**12:
        raise _Invalid(f"steps_done is {_short(steps)}, expected a whole number of batches from 0")
    history = meta.get("history")
    if not isinstance(history, dict) or not isinstance(history.get("loss"), list):
        raise _Invalid(f"history is {_short(history)}, expected an object with a list 'loss'")
    for key, series in history.items():
        if isinstance(series, list):
            bad = next((v for v in series if not _is_number(v)), None)
            if bad is not None or (key != "batch_loss" and len(series) != epochs):
                expected = f"{epochs} finite number(s), one per epoch done" if key != "batch_loss" else "numbers"
                raise _Invalid(f"history.{key} holds {_short(series)}, expected {expected}")
        elif not isinstance(series, (int, float, str, bool, type(None))):
            raise _Invalid(f"history.{key} is {_short(series)}, expected a number, a string or a list")
    found = meta.get("fingerprint")
    kinds = {"spec": dict, "training": dict, "data": dict, "backend": str}
    if not isinstance(found, dict) or any(not isinstance(found.get(k), t) for k, t in kinds.items()):
        raise _Invalid(f"fingerprint is {_short(found)}, expected an object with spec, training, data, seed, backend")
    if not _is_int(found.get("seed")) or not 0 <= found["seed"] < 2**32:
        raise _Invalid(f"fingerprint.seed is {_short(found.get('seed'))}, expected a whole number from 0 to 2**32-1")
    parts: dict[str, dict[str, np.ndarray]] = {"weights": {}, "trainer": {}, "carry": {}}
    for name, value in arrays.items():
        prefix, _, key = name.partition("/")
        if prefix not in parts or not key or (prefix != "weights" and not _KEY.fullmatch(key)):
            raise _Invalid(f"it holds an array named {name[:80]!r}, expected weights/NAME, trainer/KEY or carry/KEY")
        if value.dtype.kind not in "biuf":
            raise _Invalid(f"{name} is a {value.dtype} array, expected numbers")
        parts[prefix][key] = value
    if not parts["weights"]:
        raise _Invalid("it holds no weights")
    carry = parts["carry"] or None
    if steps and carry is None:
        raise _Invalid(f"steps_done is {steps} but it holds no carry arrays (the epoch's running sums)")
    if carry is not None:
        _check_carry(carry, steps, found)
    return Checkpoint(epochs, history, parts["weights"], parts["trainer"], found, carry)


def _check_carry(carry: dict[str, np.ndarray], steps: int, found: dict[str, Any]) -> None:
    """The running sums of an epoch stopped within: ``steps`` (= steps_done), ``batch_loss`` (one per step),
    and the backend's sums (torch: ``loss_sums`` and ``metric/NAME`` per metric; keras: ``metric/K``)."""
    required = {"steps": (), "batch_loss": (steps,)}
    metrics = found["training"].get("metrics", [])
    if found["backend"] == "torch":
        required["loss_sums"] = (2,)
        required.update(
            {f"metric/{name}": None for name in dict.fromkeys(metrics if isinstance(metrics, list) else [])}
        )
    for key, shape in required.items():
        if key not in carry:
            raise _Invalid(f"it holds no carry/{key} (the checkpoint is within an epoch: steps_done {steps})")
        if shape is not None and tuple(carry[key].shape) != shape:
            raise _Invalid(f"carry/{key} has shape {tuple(carry[key].shape)}, expected {shape}")
    if carry["steps"].dtype.kind not in "iu" or int(carry["steps"]) != steps or not steps:
        raise _Invalid(f"carry/steps is {carry['steps']!r}, expected steps_done ({steps})")
    if found["backend"] == "torch":
        world = {tuple(v.shape) for k, v in carry.items() if k.startswith("metric/")}
        if len(world) > 1 or any(len(shape) != 2 or shape[1] != 2 for shape in world):
            raise _Invalid(f"the carry's metric sums have shapes {sorted(world)}, expected (processes, 2) each")
    else:
        indices = sorted(int(k.split("/")[1]) for k in carry if k.startswith("metric/") and k[7:].isdigit())
        if indices != list(range(len(indices))) or len(indices) != sum(k.startswith("metric/") for k in carry):
            raise _Invalid("the carry's metric/K arrays are not numbered 0, 1, 2, ...")


def check_checkpoint(checkpoint: Checkpoint, where: str = "the checkpoint") -> Checkpoint:
    """The checks :func:`load_checkpoint` makes, for a checkpoint made in memory (``fit(resume=Checkpoint(...))``)."""
    carry = checkpoint.epoch_carry or {}
    steps = carry.get("steps", 0)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "epochs_done": checkpoint.epochs_done,
        "steps_done": int(steps) if np.ndim(steps) == 0 and np.asarray(steps).dtype.kind in "iu" else steps,
        "history": checkpoint.history,
        "fingerprint": checkpoint.fingerprint,
    }
    arrays = {f"weights/{k}": np.asarray(v) for k, v in checkpoint.weights.items()}
    arrays.update({f"trainer/{k}": np.asarray(v) for k, v in checkpoint.trainer_state.items()})
    arrays.update({f"carry/{k}": np.asarray(v) for k, v in carry.items()})
    return _validated(meta, arrays, where)


def check_fits(checkpoint: Checkpoint, weights: dict[str, np.ndarray], state: dict[str, np.ndarray]) -> None:
    """Refuse a checkpoint whose weights or trainer state do not fit the model and trainer to resume: each array
    against ``weights`` (the model's) and ``state`` (the fresh trainer's ``state()``): names, shapes and dtypes."""
    problems: list[str] = []
    for what, saved, now in (("weights", checkpoint.weights, weights), ("trainer", checkpoint.trainer_state, state)):
        for key in sorted(set(saved) | set(now)):
            if key not in saved:
                problems.append(f"{what}/{key} is missing (expected {np.asarray(now[key]).dtype} {now[key].shape})")
            elif key not in now:
                problems.append(f"{what}/{key} is not part of this model's {what} state")
            elif saved[key].shape != np.shape(now[key]) or saved[key].dtype != np.asarray(now[key]).dtype:
                problems.append(
                    f"{what}/{key} is {saved[key].dtype} {saved[key].shape}, expected {np.asarray(now[key]).dtype} "
                    f"{np.shape(now[key])}"
                )
    if problems:
        raise RnnspecError(
            f"cannot resume: the checkpoint does not fit this model and trainer: {'; '.join(problems[:20])}"
            + (f"; and {len(problems) - 20} more" if len(problems) > 20 else "")
            + ". fix: resume with the same spec, backend and number of processes, or start the run afresh with "
            "--overwrite"
        )
