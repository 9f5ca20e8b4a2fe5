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
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.spec import ModelSpec, TrainingSpec

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "fingerprint", "load_checkpoint", "save_checkpoint"]

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
    """Read a checkpoint written by :func:`save_checkpoint`; a damaged or foreign file is an RnnspecError."""
    where = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
        if total > MAX_CHECKPOINT_BYTES:
            raise RnnspecError(f"{where}: the checkpoint claims {total:,} bytes; not a checkpoint rnnspec wrote")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {meta.get('format') if isinstance(meta, dict) else meta!r}")
        return Checkpoint(
            epochs_done=int(meta["epochs_done"]),
            history=dict(meta["history"]),
            weights={k[len("weights/") :]: v for k, v in arrays.items() if k.startswith("weights/")},
            trainer_state={k[len("trainer/") :]: v for k, v in arrays.items() if k.startswith("trainer/")},
            fingerprint=dict(meta["fingerprint"]),
            epoch_carry={k[len("carry/") :]: v for k, v in arrays.items() if k.startswith("carry/")} or None,
        )
    except RnnspecError:
        raise
    except FileNotFoundError:
        raise RnnspecError(f"{where}: no such checkpoint") from None
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise RnnspecError(
            f"{where}: not a readable rnnspec checkpoint ({type(exc).__name__}: {exc}); it may be truncated or "
            "damaged. fix: start the run afresh with --overwrite"
        ) from None
