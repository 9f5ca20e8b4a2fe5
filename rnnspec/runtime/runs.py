"""What ``rnnspec train`` leaves in its output folder, and reading it back for ``evaluate`` / ``predict``.

A run folder holds the native artifact, the canonical weights (``NAME.weights.safetensors``), the
history (``history.json``), the loss and metric curves (``loss.png``, ``accuracy.png``, ``mae.png``...) and, when
the data has them, what turns text into ids and back (``vocab.json``: tokenizer, alphabet, classes), and
``run.json`` (the data source, its file as an absolute path and its columns, the backend and seed), which
``evaluate`` and ``predict`` read from any working folder, and
``checkpoint.npz``, the state after the last epoch, which ``train --resume`` continues from.
"""

from __future__ import annotations

import glob
import io
import json
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnspec.lang.errors import RnnspecError
from rnnspec.util import ExclusiveLock, LockHeldError, printable, write_bytes_atomic, write_text_atomic

if TYPE_CHECKING:
    from rnnspec.runtime.checkpoint import Checkpoint

__all__ = [
    "CHECKPOINT_FILE",
    "VOCAB_FILE",
    "EvaluationData",
    "RunFolder",
    "SilentRunFolder",
    "check_weights_path",
    "checkpoint_to_resume",
    "checkpoint_writer",
    "evaluation_data",
    "is_weights_name",
    "plot_history",
    "read_run_info",
    "read_vocab",
    "resolve_run",
    "vocab_for",
    "weights_in",
    "write_history",
    "write_model_files",
    "write_run",
    "write_run_info",
    "write_vocab",
]

VOCAB_FILE = "vocab.json"
RUN_FILE = "run.json"
CHECKPOINT_FILE = "checkpoint.npz"
RUN_COLUMNS = ("text_column", "label_column")
"""The columns (keys) of a text or JSONL file that ``run.json`` records, as the options name them."""
_RUN_FILES = (".safetensors", ".keras", ".png", "history.json", VOCAB_FILE, RUN_FILE, CHECKPOINT_FILE)
"""Names of the files a run folder holds (by ending); a folder holding anything else is not a run folder."""
_PARTIAL, _OLD = "partial", "old"
"""Hidden siblings of a run folder ``DIR``: ``.DIR.partial-PID-XXXX`` (a run being written by process PID)
and ``.DIR.old-XXXX`` (the previous run, for the instant between the two renames of :meth:`RunFolder.commit`).
``.DIR.checkpoint.npz`` is the checkpoint of a run still training into ``DIR`` (or stopped by a kill), and
``.DIR.lock`` the lock the run writing ``DIR`` holds (its pid inside; removed when the run ends)."""


class RunFolder:
    """A run folder written as a unit: files go to a hidden staging folder beside it, renamed into place at
    :meth:`commit`. An interruption (Ctrl-C, ``kill -9``, a full disk) leaves the previous run whole.

    Created before training, so an unwritable place is found before any work. An existing non-empty folder
    is refused unless ``overwrite``, and even then only when it holds nothing but a run's files.
    What a ``kill -9`` left beside the folder is tidied up here: a previous run caught between the two
    renames of :meth:`commit` is put back, and staging folders of processes that no longer run are removed.
    """

    def __init__(self, target: Path, overwrite: bool = False, resume: bool = False):
        self.target = Path(target)
        """The folder as the user named it (every message uses it)."""
        self.replaces = False
        """Whether a previous run is there (and :meth:`commit` replaces it)."""
        self._place = Path(os.path.realpath(self.target))  # `.`, `..` and a link name the real folder
        if not self._place.name or Path.cwd().resolve().is_relative_to(self._place):
            raise RnnspecError(
                f"-o {self.target} is the working folder (or holds it); a run folder is written as a whole and "
                "renamed into place, which would pull the folder out from under your shell. fix: -o a subfolder, "
                "e.g. -o run"
            )
        self.resuming = resume
        """Whether this run continues the checkpoint of a previous one."""
        self.resume_from = Path()
        self.checkpoint = self._place.with_name(f".{self._place.name}.checkpoint.npz")
        """Where the checkpoint of every completed epoch is written while training (moved into the run at the end)."""
        self._lock = self._take_lock()
        try:
            self._prepare(overwrite, resume)
        except BaseException:
            self._lock.release()
            raise

    def _prepare(self, overwrite: bool, resume: bool) -> None:
        self._tidy()
        if resume:
            self.resume_from = self._checkpoint_to_resume()
        elif self.checkpoint.exists() and not overwrite:
            raise RnnspecError(
                f"an unfinished run into {self.target} left a checkpoint ({self.checkpoint.name} beside it); nothing "
                "was trained. fix: pass --resume to continue it, or --overwrite to start afresh"
            )
        self._refuse_existing(overwrite or resume)
        self.staging = self._make_staging()
        self._probe_replace()
        if overwrite and not resume:
            self.checkpoint.unlink(missing_ok=True)  # a stale checkpoint must not outlive the run that replaces it

    def _checkpoint_to_resume(self) -> Path:
        return checkpoint_to_resume(self.target)

    def _take_lock(self) -> ExclusiveLock:
        """The exclusive lock on the run folder (``.DIR.lock`` beside it), held until :meth:`abort`: a second
        ``train -o DIR`` (or ``--resume``, or ``--overwrite``) while this one runs is refused with this process's
        pid. The operating system releases it when the process ends, even by ``kill -9``: a dead run never blocks."""
        parent = self._place.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            return ExclusiveLock(self._place.with_name(f".{self._place.name}.lock"))
        except LockHeldError as exc:
            holder = f"process {exc.pid}" if exc.pid is not None else "another process"
            raise RnnspecError(
                f"{self.target} is being written by another run ({holder} holds {printable(exc.filename)}); nothing "
                f"was trained. fix: wait for it to finish (or stop it: kill {exc.pid or 'PID'}), or choose another "
                f"folder, e.g. -o {_free_sibling(self.target)}"
            ) from None
        except OSError as exc:
            raise RnnspecError(
                f"cannot write the run folder {self.target}: {_blocker(parent)} ({exc.strerror or exc}); "
                "nothing was trained. fix: choose a folder you can write with -o"
            ) from None

    def _probe_replace(self) -> None:
        """A run already in the folder is replaced by a rename at the end: try that rename now (and back), so a
        folder that cannot be moved (immutable, owned by another user in a sticky folder) is refused before any
        epoch, not after the last."""
        if not self._place.exists():
            return
        probe = self._sibling(_OLD, f"probe-{secrets.token_hex(4)}")  # _tidy puts it back if we die in between
        try:
            os.rename(self._place, probe)
        except OSError as exc:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise RnnspecError(
                f"cannot replace the run folder {self.target}: moving it failed ({exc.strerror or exc}); nothing was "
                "trained. fix: make it (and the folder it is in) writable, or choose another folder with -o, "
                f"e.g. -o {_free_sibling(self.target)}"
            ) from None
        os.rename(probe, self._place)

    # -- before training ---------------------------------------------------------------------------------

    def _sibling(self, kind: str, tail: str) -> Path:
        return self._place.with_name(f".{self._place.name}.{kind}-{tail}")

    def _siblings(self, kind: str) -> list[Path]:
        return list(self._place.parent.glob(f".{glob.escape(self._place.name)}.{kind}-*"))

    def _tidy(self) -> None:
        """Undo what a killed run left: restore a previous run caught mid-commit, drop dead staging folders."""
        if not self._place.parent.is_dir():
            return
        old = sorted(self._siblings(_OLD), key=lambda p: p.stat().st_mtime)
        if old and not self._place.exists():
            os.rename(old.pop(), self._place)
        for leftover in old:
            shutil.rmtree(leftover, ignore_errors=True)
        for partial in self._siblings(_PARTIAL):
            if not _process_alive(partial.name.rsplit("-", 2)[-2]):
                shutil.rmtree(partial, ignore_errors=True)
        # a checkpoint write cut short (kill -9) leaves its temp file; this process holds the lock: none is live
        for temp in self._place.parent.glob(f".{glob.escape(self.checkpoint.name)}.*.tmp"):
            temp.unlink(missing_ok=True)

    def _refuse_existing(self, overwrite: bool) -> None:
        """An existing file, or a folder holding a run (without ``overwrite``) or anything else, is refused."""
        if self._place.exists() and not self._place.is_dir():
            raise RnnspecError(f"{self.target} is a file; -o needs a folder (it is created if missing)")
        names = sorted(p.name for p in self._place.iterdir()) if self._place.is_dir() else []
        self.replaces = bool(names)
        if not names:
            return
        foreign = [name for name in names if not name.endswith(_RUN_FILES)]
        listed = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        if not foreign and not overwrite:
            raise RnnspecError(
                f"{self.target} already holds a run ({listed}); nothing was trained. fix: pass --resume to continue "
                f"it, --overwrite to replace it, or choose another folder, e.g. -o {_free_sibling(self.target)}"
            )
        if foreign:
            raise RnnspecError(
                f"{self.target} holds files that are not a run's ({', '.join(foreign[:5])}); rnnspec writes a run "
                f"into an empty or new folder and --overwrite replaces run folders only. "
                f"fix: choose another folder, e.g. -o {_free_sibling(self.target)}"
            )

    def _make_staging(self) -> Path:
        """The hidden folder the run is written into; creating it (and a probe file in it) tests the place."""
        parent = self._place.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            staging = self._sibling(_PARTIAL, f"{os.getpid()}-{secrets.token_hex(4)}")
            staging.mkdir()  # not mkdtemp: the folder gets the usual permissions (0777 less the umask)
        except OSError as exc:
            raise RnnspecError(
                f"cannot write the run folder {self.target}: {_blocker(parent)} ({exc.strerror or exc}); "
                "nothing was trained. fix: choose a folder you can write with -o"
            ) from None
        try:
            probe = staging / "probe"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise RnnspecError(
                f"cannot write the run folder {self.target}: writing into {parent} failed ({exc.strerror or exc}); "
                "nothing was trained. fix: free disk space or choose another folder with -o"
            ) from None
        return staging

    # -- after training ----------------------------------------------------------------------------------

    def final(self, path: Path) -> Path:
        """Where a file written into the staging folder will be once committed (named as the user gave -o)."""
        return self.target / Path(path).relative_to(self.staging)

    def commit(self) -> None:
        """Move the finished run into place, replacing a previous run; on any failure the previous run stays.

        The checkpoint of the last epoch goes into the run (``checkpoint.npz``), for a later ``--resume``."""
        if self.checkpoint.is_file():
            shutil.copyfile(self.checkpoint, self.staging / CHECKPOINT_FILE)
        elif self.resuming and self.resume_from.is_file():  # resumed, but no epoch completed since
            shutil.copyfile(self.resume_from, self.staging / CHECKPOINT_FILE)
        old = None
        if self._place.exists():
            old = self._sibling(_OLD, secrets.token_hex(4))
            os.rename(self._place, old)
        try:
            os.rename(self.staging, self._place)
        except BaseException:
            if old is not None:
                os.rename(old, self._place)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.checkpoint.unlink(missing_ok=True)

    def abort(self) -> None:
        """Drop the staging folder (nothing, after :meth:`commit`); the previous run, if any, is untouched.
        Releases the run folder's lock: the end of every run, finished or not."""
        shutil.rmtree(self.staging, ignore_errors=True)
        self._lock.release()


def checkpoint_to_resume(target: Path) -> Path:
    """The newest checkpoint of the run in ``target``: an unfinished run's (beside it), else the finished run's."""
    place = Path(os.path.realpath(target))
    for path in (place.with_name(f".{place.name}.checkpoint.npz"), place / CHECKPOINT_FILE):
        if path.is_file():
            return path
    what = "holds a run without a checkpoint" if place.is_dir() and any(place.iterdir()) else "holds no run"
    raise RnnspecError(
        f"nothing to resume: {target} {what} (no {CHECKPOINT_FILE}; runs written by earlier versions of "
        "rnnspec have none). fix: train without --resume"
    )


def _process_alive(pid: str) -> bool:
    """Whether process ``pid`` runs (unknown counts as running, so nothing of a live run is removed)."""
    if not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _free_sibling(target: Path) -> Path:
    """``DIR-2``, ``DIR-3``... : the first name beside ``target`` that does not exist yet."""
    n = 2
    while target.with_name(f"{target.name}-{n}").exists():
        n += 1
    return target.with_name(f"{target.name}-{n}")


def _blocker(parent: Path) -> str:
    """Why nothing can be created in ``parent``: the nearest existing ancestor that is a file, or not writable."""
    here = parent
    while not here.exists() and here != here.parent:
        here = here.parent
    if not here.is_dir():
        return f"{here} is a file, not a folder"
    if not os.access(here, os.W_OK | os.X_OK):
        return f"{here} is not writable"
    return f"cannot create {parent}"


def write_model_files(impl: Any, model: Any, directory: Path) -> list[Path]:
    """The native artifact (through the backend) and ``NAME.weights.safetensors``, atomically; the paths written.

    The one writer of a model into a folder: ``rnnspec build -o``, ``convert`` and ``train`` use it.
    """
    from rnnspec.core.weights import save_weights_file
    from rnnspec.runtime.models import get_weights, spec_of

    spec = spec_of(model)
    written = list(impl.save_artifact(model, directory))
    canonical = Path(directory) / f"{spec.name}.weights.safetensors"
    save_weights_file(get_weights(model), canonical, spec)
    return [*written, canonical]


def write_history(directory: Path, history: dict[str, Any]) -> Path:
    """``history.json``, strict JSON: a non-finite value raises ValueError rather than writing a bare NaN."""
    path = directory / "history.json"
    write_text_atomic(path, json.dumps(history, indent=2, allow_nan=False) + "\n")
    return path


def plot_history(directory: Path, history: dict[str, Any], title: str) -> list[Path]:
    """``loss.png`` and one PNG per metric (``accuracy.png``, ``mae.png``...): training and validation per epoch."""
    from rnnspec.runtime.check import pyplot

    plt = pyplot()
    written = []
    for metric in _epoch_metrics(history):
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


def _epoch_metrics(history: dict[str, Any]) -> list[str]:
    """The per-epoch training series of a history (``loss``, ``accuracy``...), not ``batch_loss``, the
    ``val_`` series or the notes ``interrupted`` / ``stopped``."""
    return [
        key
        for key, value in history.items()
        if isinstance(value, list) and value and key != "batch_loss" and not key.startswith("val_")
    ]


def write_run_info(
    directory: Path,
    *,
    data: str,
    backend: str,
    seed: int,
    data_file: Path | None = None,
    columns: dict[str, str] | None = None,
) -> Path:
    """``run.json``: what the run trained on and how, so that ``evaluate`` and ``predict`` need no flags.

    ``data``: the source as given; ``data_file``: the file it names, absolute (so it is found again from any
    working folder, and a later ``evaluate`` knows which file is the training file); ``columns``:
    ``text_column`` / ``label_column`` of a text or JSONL file."""
    path = directory / RUN_FILE
    payload: dict[str, Any] = {"data": data}
    if data_file is not None:
        payload["data_file"] = str(data_file)
    payload.update(columns or {})
    payload.update({"backend": backend, "seed": seed})
    write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")
    return path


def read_run_info(directory: Path) -> dict[str, Any]:
    """The ``run.json`` of a run folder; empty when there is none (runs of older versions)."""
    from rnnspec.data.tokenizer import loads_json

    path = Path(directory) / RUN_FILE
    if not path.is_file():
        return {}
    try:
        data = loads_json(path.read_text(encoding="utf-8"), str(path), document="the run file")
    except (OSError, UnicodeDecodeError, RnnspecError) as exc:
        raise RnnspecError(f"{path}: cannot read the run file ({exc}); train the run again") from None
    text_keys = ("data", "data_file", *RUN_COLUMNS)
    if not isinstance(data, dict) or not all(isinstance(data.get(key, ""), str) for key in text_keys):
        raise RnnspecError(f"{path}: not a run file written by rnnspec train")
    return data


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
    """The ``vocab.json`` of a run: ``tokenizer`` (a Tokenizer), ``alphabet``, ``classes``, ``source`` where present."""
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
    if isinstance(data.get("source"), str):
        out["source"] = data["source"]
    return out


class SilentRunFolder:
    """What a rank other than 0 of a process group has in place of the :class:`RunFolder`: it reads the
    checkpoint to resume, and writes nothing (rank 0 writes the run)."""

    def __init__(self, target: Path, resume: bool):
        self.target = Path(target)
        self.resuming = resume
        self.checkpoint = None
        self.resume_from = checkpoint_to_resume(self.target) if resume else None

    def abort(self) -> None:
        """Nothing to drop: this rank wrote nothing."""


def checkpoint_writer(run: RunFolder | SilentRunFolder) -> Callable[[Checkpoint], None]:
    """Write each epoch's checkpoint beside the run folder (rank 0; the other ranks only gather their part)."""
    from rnnspec.runtime.checkpoint import save_checkpoint

    path = run.checkpoint
    if path is None:  # another rank: it takes part in gathering the state, rank 0 writes it
        return lambda _state: None
    return lambda state: save_checkpoint(state, path)


def write_run(run: RunFolder, impl: Any, model: Any, history: dict[str, Any], dataset: Any, title: str,
              backend: str, seed: int, data_file: Path | None = None,
              columns: dict[str, str] | None = None) -> list[Path]:  # fmt: skip
    """Write a trained model's run into the staging folder and move it into place; the files written
    (staging paths: :meth:`RunFolder.final` names them as the user will find them).

    An error names the user's folder, never the staging one, and leaves a previous run there whole.
    """
    directory = run.staging
    try:
        written = write_model_files(impl, model, directory)
        written.append(write_history(directory, history))
        written += plot_history(directory, history, title)
        vocab = write_vocab(directory, dataset)
        if vocab is not None:
            written.append(vocab)
        info = {"data_file": data_file, "columns": columns}
        written.append(write_run_info(directory, data=dataset.source, backend=backend, seed=seed, **info))
        if run.checkpoint.is_file():  # commit moves it in: the state after the last epoch, for --resume
            written.append(directory / CHECKPOINT_FILE)
        run.commit()
    except OSError as exc:
        kept = "the run already there is untouched" if run.replaces else "nothing was created"
        if run.checkpoint.is_file():  # the trained epochs stay resumable
            kept += (
                f"; the checkpoint of its last completed epoch stays beside it ({run.checkpoint.name}): "
                "the same command with --resume writes the run once there is space"
            )
        raise RnnspecError(
            f"cannot write the run folder {run.target}: {exc.strerror or exc}; the run folder was not written and "
            f"{kept}. fix: free disk space or choose another folder with -o"
        ) from None
    return written


IMPORT_WEIGHTS = "weights.safetensors"
"""The name ``rnnspec import`` gives the canonical weights beside its ``spec.yaml``."""
WEIGHTS_SUFFIX = ".weights.safetensors"
"""The ending of the canonical weights ``train``, ``build -o`` and ``convert`` write (``NAME.weights.safetensors``)."""


def is_weights_name(name: str) -> bool:
    """The one naming rule of canonical weights files: ``weights.safetensors`` (``import``) or
    ``NAME.weights.safetensors`` (``train``, ``build -o``, ``convert``). ``evaluate`` and ``predict`` find
    them in a folder by it."""
    return name == IMPORT_WEIGHTS or name.endswith(WEIGHTS_SUFFIX)


def weights_in(folder: Path, command: str = "evaluate") -> Path:
    """The one canonical weights file in ``folder`` (a run folder, or an import's), by :func:`is_weights_name`."""
    found = sorted(p for p in Path(folder).iterdir() if is_weights_name(p.name) and p.is_file())
    if len(found) == 1:
        return found[0]
    if found:
        listed = ", ".join(p.name for p in found[:4])
        raise RnnspecError(
            f"{folder}: {len(found)} weights files in this folder ({listed}), and rnnspec cannot tell which to use. "
            f"fix: name one: rnnspec {command} SPEC --weights {found[0]}"
        )
    raise RnnspecError(
        f"{folder}: no weights file in this folder (NAME{WEIGHTS_SUFFIX}, as rnnspec train writes, or "
        f"{IMPORT_WEIGHTS}, as rnnspec import writes). fix: give the folder rnnspec train -o or rnnspec import -o "
        "wrote, or the spec file and --weights FILE"
    )


def _file_kind(path: Path) -> str | None:
    """What a file that is not canonical weights is, in words, from its name and first bytes (None: it may be
    canonical weights: a safetensors file, or something rnnspec's weights reader will explain)."""
    name = path.name.lower()
    try:
        with open(path, "rb") as stream:
            head = stream.read(64)
    except OSError:
        return None
    if name.endswith(".torch.safetensors"):
        return "a torch artifact (the torch model rnnspec writes, with PyTorch's key names)"
    if name.endswith(".keras") or head.startswith(b"\x89HDF") or name.endswith((".h5", ".hdf5")):
        return "a Keras model file"
    if name.endswith((".pt", ".pth", ".bin", ".ckpt")) or head.startswith(b"\x80"):
        return "a PyTorch file (a state dict or a pickled model)"
    if name.endswith(".npz") or name == CHECKPOINT_FILE:
        return "a training checkpoint (train --resume reads it)" if name == CHECKPOINT_FILE else "a NumPy archive"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (a .keras model or a torch.save file)"
    if head.lstrip()[:1] in (b"{", b"["):
        known = {"history.json": "the training history", RUN_FILE: "the run's record", VOCAB_FILE: "the vocabulary"}
        return f"a JSON file ({known[name]} of a run)" if name in known else "a JSON file"
    if name.endswith((".yaml", ".yml")):
        return "a YAML file (a spec?)"
    return None


def check_weights_path(path: Path, command: str = "evaluate") -> Path:
    """``--weights PATH`` as ``evaluate`` and ``predict`` read it: canonical weights, or a folder holding them
    (a run folder, an import's folder: its weights file). Anything else is named, with what to pass instead."""
    path = Path(path)
    if path.is_dir():
        return weights_in(path, command)
    if not path.exists():
        raise RnnspecError(
            f"--weights {path}: no such file. fix: pass a weights file (NAME{WEIGHTS_SUFFIX}) or the run folder"
        )
    kind = _file_kind(path)
    if kind is None:
        return path
    beside = weights_in(path.parent, command) if _has_one_weights_file(path.parent) else None
    if beside is not None:
        fix = f"pass the weights beside it, --weights {beside}, or the folder alone: rnnspec {command} {path.parent}"
    elif "Keras" in kind or "zip" in kind:
        fix = (
            f"import it first: rnnspec import {path} -o imported (writes imported/spec.yaml and "
            f"imported/{IMPORT_WEIGHTS}, with proof), then rnnspec {command} imported"
        )
    elif "PyTorch" in kind:
        fix = (
            f"import it with the spec it implements: rnnspec import {path} --spec SPEC -o imported, then rnnspec "
            f"{command} imported"
        )
    else:
        fix = f"pass canonical weights (NAME{WEIGHTS_SUFFIX}: train, build -o and import write them), or a run folder"
    raise RnnspecError(f"--weights {path} is {kind}, not canonical weights. fix: {fix}")


def _has_one_weights_file(folder: Path) -> bool:
    try:
        weights_in(folder)
    except (RnnspecError, OSError):
        return False
    return True


def resolve_run(spec_arg: Path, weights: Path | None, command: str = "evaluate") -> tuple[Any, Path]:
    """``(spec, weights)`` from a spec file and ``--weights``, from a run folder alone (its weights carry the
    spec), or from a canonical weights file alone. ``--weights`` may name a folder holding the weights; a file
    of another kind, given for either, is named with what to pass instead (``command``: for the fix)."""
    from rnnspec.core.weights import spec_from_weights_file
    from rnnspec.lang.loader import load_spec

    if weights is not None:
        weights = check_weights_path(weights, command)
    spec_arg = Path(spec_arg)
    if spec_arg.is_dir():
        weights = weights or weights_in(spec_arg, command)
        return spec_from_weights_file(weights), weights
    if spec_arg.suffix.lower() not in (".yaml", ".yml", ".json") and spec_arg.is_file():
        kind = _file_kind(spec_arg)
        if kind is None and weights is None and spec_arg.name.lower().endswith(".safetensors"):
            return spec_from_weights_file(spec_arg), spec_arg  # canonical weights carry their spec
        if kind is not None and "YAML" not in kind and "JSON" not in kind:
            try:
                check_weights_path(spec_arg, command)
            except RnnspecError as exc:
                fix = str(exc).split(" fix: ", 1)[-1]
                raise RnnspecError(
                    f"{spec_arg} is {kind}, not a spec or a run folder (rnnspec {command} takes a run folder, or a "
                    f"spec file with --weights). fix: {fix}"
                ) from None
    if weights is None:
        raise RnnspecError(
            f"no weights given for {spec_arg}; pass --weights FILE, or give the run folder instead of the spec "
            f"(rnnspec {command} runs/NAME-BACKEND)"
        )
    return load_spec(spec_arg), weights


@dataclass(frozen=True)
class EvaluationData:
    """What ``evaluate`` reads: :func:`~rnnspec.data.load_data`'s ``source`` (None: the spec's own, whose
    absence load_data explains), ``base_dir`` and columns, and a ``note`` for the user (None: nothing to say)."""

    source: str | None
    base_dir: Path | None
    columns: dict[str, str]
    note: str | None = None


def evaluation_data(
    spec: Any, spec_arg: Path, weights: Path, data: str | None, columns: dict[str, str | None] | None = None,
    saved: dict[str, Any] | None = None,
) -> EvaluationData:  # fmt: skip
    """The data to evaluate on, held out from training.

    ``--data`` (``data``, relative to the working folder) is read as given; when it is the very file the run
    trained on, the note says so. Else the run's ``run.json`` (beside ``weights``; ``saved``: its
    ``vocab.json``, for runs of older versions), else the spec's ``training.data`` (relative to the spec's
    folder): used only where it has a test split (built-in and Keras sources, Keras ``.npz`` files). A single
    file is the training file, and rnnspec does not evaluate a model on the data it trained on: refused, with
    the fix. Columns: those given (``columns``, None for not given), else the ones the run recorded."""
    from rnnspec.data.loading import data_file, has_test_split

    folder = Path(weights).parent
    info = read_run_info(folder)
    given = columns or {}
    chosen = {key: given.get(key) or info.get(key) or key.split("_")[0] for key in RUN_COLUMNS}
    trained_on = info.get("data_file")
    if data is not None:
        note = None
        if trained_on and _same_file(data_file(data), Path(trained_on)):
            note = (
                f"note: {data} is the file this run trained on; these numbers are on its training data, not on "
                "held-out data"
            )
        return EvaluationData(data, None, chosen, note)
    recorded = info.get("data") or (saved or {}).get("source")
    if isinstance(recorded, str):
        source = trained_on or recorded  # an absolute path, found from any working folder (older runs: as given)
        if has_test_split(source):
            return EvaluationData(source, None, chosen)
        raise RnnspecError(_no_held_out(f"the run in {folder} trained on {source}", chosen))
    if spec.training is not None and spec.training.data is not None:
        base = None if Path(spec_arg).is_dir() else Path(spec_arg).parent
        if has_test_split(spec.training.data, base):
            return EvaluationData(spec.training.data, base, chosen)
        shown = data_file(spec.training.data, base)
        raise RnnspecError(_no_held_out(f"the spec's training.data is {shown}, the training file", chosen))
    return EvaluationData(None, None, chosen)


def _no_held_out(what: str, columns: dict[str, str]) -> str:
    named = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in columns.items() if value != key[:-7])
    return (
        f"no held-out data to evaluate on: {what}, one file with no test split, and rnnspec does not evaluate a "
        f"model on the data it trained on. fix: pass held-out data with --data FILE (e.g. a test file in the "
        f"same format{'; its columns are read as ' + named if named else ''})"
    )


def _same_file(a: Path | None, b: Path) -> bool:
    try:
        return a is not None and os.path.samefile(a, b)
    except OSError:
        return False


def vocab_for(weights: Path, vocab: Path | None) -> dict[str, Any]:
    """The run's ``vocab.json`` as :func:`read_vocab` reads it: ``vocab`` (``--vocab``), else the one beside
    ``weights``; empty when there is none."""
    path = vocab or Path(weights).parent / VOCAB_FILE
    if vocab is not None and not path.exists():
        raise RnnspecError(f"{path}: no such vocabulary file")
    return read_vocab(path) if path.exists() else {}
