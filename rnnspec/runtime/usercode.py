"""Running a user's own Python code, where they named it: ``rnnspec import model.pt --module my_model.py:MyModule``
loads the class from that file and makes an instance of it, so that the import can be proven against the module's
own ``forward()``. Nothing here runs code the user did not name explicitly, and no framework is imported here (the
user's file imports its own).

Every failure of the user's code (the file cannot be read or does not compile, an import inside it fails, the class
is not there, its constructor or its forward raises) is a :class:`UserCodeError`: one paragraph that names the file,
what was being done, the exception's own line and where in the user's file it was raised, never a traceback.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from rnnspec.lang.errors import RnnspecError
from rnnspec.util import printable

__all__ = ["UserCodeError", "failure", "instantiate", "load_class", "parse_kwargs", "parse_reference"]


class UserCodeError(RnnspecError):
    """The user's own code (a file named with ``--module``) could not be loaded or run."""


def parse_reference(reference: str) -> tuple[Path, str]:
    """``FILE.py:CLASS`` as ``(path, class name)``; a :class:`UserCodeError` for anything else."""
    path, sep, name = reference.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise UserCodeError(
            f"--module {reference!r}: expected FILE.py:CLASS, the Python file that defines your module and the "
            "name of its class, e.g. --module my_model.py:Tagger"
        )
    return Path(path), name


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """``--args``: a JSON object of the constructor's keyword arguments (None: no arguments)."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserCodeError(
            f"--args {text!r} is not JSON ({exc.msg} at character {exc.pos}); expected an object of the "
            'constructor\'s keyword arguments, e.g. --args \'{"vocab_size": 20, "hidden": 8}\''
        ) from None
    if not isinstance(value, dict):
        raise UserCodeError(
            f"--args {text!r} is a JSON {type(value).__name__}; expected an object of the constructor's keyword "
            'arguments, e.g. --args \'{"vocab_size": 20, "hidden": 8}\''
        )
    return value


def failure(exc: BaseException, path: Path) -> str:
    """The exception's own line, and the line of ``path`` it was raised at (the innermost frame in that file)."""
    line = traceback.format_exception_only(type(exc), exc)[-1].strip()
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _same_file(f.filename, path)]
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        return f"{line} (at {printable(path)} line {exc.lineno})"
    if frames:
        frame = frames[-1]
        code = f": `{frame.line.strip()}`" if frame.line else ""
        return f"{line} (raised at {printable(path)} line {frame.lineno}, in {frame.name}{code})"
    return line


def _same_file(name: str, path: Path) -> bool:
    try:
        return Path(name).resolve() == path.resolve()
    except OSError:
        return False


def _forget_neighbours(before: set[str], folder: str) -> None:
    """Take the modules the user's file imported from its own folder out of ``sys.modules`` (the file's module
    keeps its references to them): a later ``--module`` from another folder with a neighbour of the same name
    (``utils.py``) must import its own, not find this one."""
    root = Path(folder)
    for key in set(sys.modules) - before:
        where = getattr(sys.modules.get(key), "__file__", None)
        try:
            inside = where is not None and Path(where).resolve().is_relative_to(root)
        except (OSError, ValueError):
            inside = False
        if inside:
            sys.modules.pop(key, None)


def load_class(path: Path, name: str) -> type:
    """Run the file at ``path`` as a module (its folder first on ``sys.path`` while it runs, so that it may import
    its neighbours) and return its class ``name``."""
    if not path.is_file():
        raise UserCodeError(
            f"--module {printable(path)}:{name}: no such file; expected the Python file that defines your module's "
            "class"
        )
    module_name = f"_rnnspec_user_module_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UserCodeError(f"--module {printable(path)}: not a Python file Python can load (expected FILE.py)")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.modules[module_name] = module  # dataclasses and pickling look their module up there
    before = set(sys.modules)
    sys.path.insert(0, folder)
    bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ left in the user's folder: import writes nothing there
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(module_name, None)
        raise UserCodeError(
            f"--module {printable(path)}: running the file failed: {failure(exc, path)}. Nothing was written. fix: "
            "the file must run on its own (`python -c \"import runpy; runpy.run_path('FILE')\"` shows the same "
            "error), with the packages it imports installed"
        ) from None
    finally:
        sys.dont_write_bytecode = bytecode
        if sys.path and sys.path[0] == folder:
            del sys.path[0]
        _forget_neighbours(before, folder)
    found = getattr(module, name, None)
    if not isinstance(found, type):
        classes = sorted(k for k, v in vars(module).items() if isinstance(v, type) and v.__module__ == module_name)
        what = "no class" if found is None else f"a {type(found).__name__}, not a class,"
        raise UserCodeError(
            f"--module {printable(path)}:{name}: the file defines {what} named {name!r}; the classes it defines: "
            f"{', '.join(classes) or 'none'}. fix: --module {printable(path)}:CLASS with one of them"
        )
    return found


def instantiate(cls: type, kwargs: dict[str, Any], path: Path) -> Any:
    """``cls(**kwargs)``, its failure a :class:`UserCodeError`."""
    try:
        return cls(**kwargs)
    except (Exception, SystemExit) as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise UserCodeError(
            f"--module {printable(path)}:{cls.__name__}: making the module, {cls.__name__}({given}), failed: "
            f"{failure(exc, path)}. fix: pass the constructor's arguments as a JSON object with --args, "
            "e.g. --args '{\"vocab_size\": 20}'"
        ) from None
