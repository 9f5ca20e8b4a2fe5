"""What ``rnnspec train`` leaves in its output folder, and reading it back for ``evaluate`` / ``predict``.

A run folder holds the native artifact, the canonical weights (``NAME.weights.safetensors``), the
history (``history.json``), the loss and metric curves (``loss.png``, ``accuracy.png``, ``mae.png``...) and, when
the data has them, what turns text into ids and back (``vocab.json``: tokenizer, alphabet, classes).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rnnspec.lang.errors import RnnspecError
from rnnspec.util import write_bytes_atomic, write_text_atomic

__all__ = [
    "VOCAB_FILE",
    "RunFolder",
    "plot_history",
    "read_vocab",
    "write_history",
    "write_model_files",
    "write_vocab",
]

VOCAB_FILE = "vocab.json"
_RUN_FILES = (".safetensors", ".keras", ".png", "history.json", VOCAB_FILE)
"""Names of the files a run folder holds (by ending); a folder holding anything else is not a run folder."""


class RunFolder:
    """A run folder written as a unit: files go to a hidden staging folder beside it, renamed into place at
    :meth:`commit`. An interruption (Ctrl-C, ``kill -9``, a full disk) leaves the previous run whole.

    Created before training, so an unwritable place is found before any work. An existing non-empty folder
    is refused unless ``overwrite``, and even then only when it holds nothing but a run's files.
    """

    def __init__(self, target: Path, overwrite: bool = False):
        self.target = Path(target)
        if self.target.exists() and not self.target.is_dir():
            raise RnnspecError(f"{self.target} is a file; -o needs a folder (it is created if missing)")
        if self.target.is_dir() and any(self.target.iterdir()):
            foreign = sorted(p.name for p in self.target.iterdir() if not p.name.endswith(_RUN_FILES))
            if not overwrite:
                raise RnnspecError(
                    f"{self.target} already holds a run ({', '.join(sorted(p.name for p in self.target.iterdir())[:4])}"
                    "...); nothing was trained. fix: pass --overwrite to replace it, or choose another folder with -o"
                )
            if foreign:
                raise RnnspecError(
                    f"{self.target} holds files that are not a run's ({', '.join(foreign[:5])}); --overwrite replaces "
                    "run folders only. fix: choose another folder with -o"
                )
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.partial-", dir=self.target.parent))
        except OSError as exc:
            raise RnnspecError(
                f"cannot write the run folder {self.target}: {exc.strerror or exc}; nothing was trained. "
                "fix: choose a folder you can write with -o"
            ) from None

    def final(self, path: Path) -> Path:
        """Where a file written into the staging folder will be once committed."""
        return self.target / Path(path).relative_to(self.staging)

    def commit(self) -> None:
        """Move the finished run into place (replacing a previous run in one rename)."""
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{secrets.token_hex(4)}")
            os.rename(self.target, old)
        try:
            os.rename(self.staging, self.target)
        except OSError:
            if old is not None:
                os.rename(old, self.target)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Drop the staging folder; the previous run (if any) is untouched."""
        shutil.rmtree(self.staging, ignore_errors=True)


def write_model_files(impl: Any, model: Any, directory: Path) -> list[Path]:
    """The native artifact (through the backend) and ``NAME.weights.safetensors``, atomically; the paths written.

    The one writer of a model into a folder: ``rnnspec build -o``, ``convert`` and ``train`` use it.
    """
    from rnnspec.runtime.models import get_weights, spec_of
    from rnnspec.runtime.weights import save_weights_file

    spec = spec_of(model)
    written = list(impl.save_artifact(model, directory))
    canonical = Path(directory) / f"{spec.name}.weights.safetensors"
    save_weights_file(get_weights(model), canonical, spec)
    return [*written, canonical]


def write_history(directory: Path, history: dict[str, Any]) -> Path:
    path = directory / "history.json"
    write_text_atomic(path, json.dumps(history, indent=2, allow_nan=False) + "\n")
    return path


def plot_history(directory: Path, history: dict[str, Any], title: str) -> list[Path]:
    """``loss.png`` and one PNG per metric (``accuracy.png``, ``mae.png``...): training and validation per epoch."""
    from rnnspec.runtime.check import pyplot

    plt = pyplot()
    written = []
    metrics = [k for k in history if k not in ("batch_loss", "interrupted") and not k.startswith("val_")]
    for metric in metrics:
        if not history.get(metric):
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        epochs = range(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], "bo-", label=f"training {metric}")
        if history.get(f"val_{metric}"):
            ax.plot(epochs, history[f"val_{metric}"], "r:", marker="s", label=f"validation {metric}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{title}: {metric}")
        ax.legend()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        path = directory / f"{metric}.png"
        write_bytes_atomic(path, buf.getvalue())
        written.append(path)
    return written


def write_vocab(directory: Path, dataset: Any) -> Path | None:
    """Save what turns text into ids (tokenizer, alphabet, class names), when the data has it."""
    payload: dict[str, Any] = {"source": dataset.source}
    if dataset.tokenizer is not None:
        payload["tokenizer"] = dataset.tokenizer.to_dict()
    if dataset.alphabet is not None:
        payload["alphabet"] = list(dataset.alphabet)
    if dataset.classes is not None:
        payload["classes"] = list(dataset.classes)
    if len(payload) == 1:
        return None
    path = directory / VOCAB_FILE
    write_text_atomic(path, json.dumps(payload, indent=2) + "\n")
    return path


def read_vocab(path: Path) -> dict[str, Any]:
    """The ``vocab.json`` of a run: ``tokenizer`` (a Tokenizer), ``alphabet``, ``classes`` where present."""
    from rnnspec.data.tokenizer import Tokenizer, loads_json

    try:
        data = loads_json(path.read_text(encoding="utf-8"), str(path), document="the vocabulary file")
    except (OSError, UnicodeDecodeError, RnnspecError) as exc:
        raise RnnspecError(
            f"{path}: cannot read the vocabulary file ({exc}); write it again with rnnspec train"
        ) from None
    if not isinstance(data, dict):
        raise RnnspecError(f"{path}: not a vocabulary file written by rnnspec train")
    out: dict[str, Any] = {}
    if "tokenizer" in data:
        out["tokenizer"] = Tokenizer.from_dict(data["tokenizer"], where=str(path))
    for key in ("alphabet", "classes"):
        if key in data:
            out[key] = tuple(str(v) for v in data[key])
    return out
