"""The one table through which the core reaches a framework backend.

Backends are named by dotted paths and imported only when asked for (on ``build``), so
``validate``, ``summary`` and ``schema`` never import a framework. Third-party packages can
add backends through the ``rnnspec.backends`` entry-point group.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from rnnspec.lang.errors import RnnspecError

__all__ = [
    "BUILTIN_BACKENDS",
    "ENTRY_POINT_GROUP",
    "BackendNotFoundError",
    "MissingFrameworkError",
    "available_backends",
    "backend_for_artifact",
    "get_backend",
    "get_exporter",
]

ENTRY_POINT_GROUP = "rnnspec.backends"
# The framework backends live in the folder backends/, installed as the package
# `rnnspec_backends`. This table is the only place in the core that names it.
_PACKAGE = "rnnspec_backends"


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend lives and which install extra brings its framework."""

    target: str
    """``module:attribute`` of the backend object."""
    extra: str | None
    """The ``pip install 'rnnspec[EXTRA]'`` that provides its framework."""
    framework_modules: tuple[str, ...] = ()
    """Top-level modules whose absence means the framework is not installed."""
    artifacts: tuple[str, ...] = ()
    """File-name endings of the native artifacts its ``load_artifact`` reads (for ``convert``)."""


BUILTIN_BACKENDS: dict[str, BackendEntry] = {
    "keras": BackendEntry(f"{_PACKAGE}.keras.model:BACKEND", "keras", ("keras", "tensorflow"), (".keras",)),
    "torch": BackendEntry(f"{_PACKAGE}.torch.model:BACKEND", "torch", ("torch",), (".torch.safetensors",)),
    "numpy": BackendEntry(f"{_PACKAGE}.numpy.model:BACKEND", None, ("numpy",), (".numpy.safetensors",)),
}


EXPORT_FORMATS: dict[str, BackendEntry] = {
    "onnx": BackendEntry(f"{_PACKAGE}.onnx.export:export_onnx", "onnx", ("onnx",)),
    "torch": BackendEntry(f"{_PACKAGE}.torch.export:export_torch", "torch", ("torch",)),
    "keras": BackendEntry(f"{_PACKAGE}.keras.export:export_keras", "keras", ("keras", "tensorflow")),
}
"""``rnnspec export --format``: the function writing each format, ``fn(spec, weights, path) -> [paths]``."""


class BackendNotFoundError(RnnspecError):
    """No backend is registered under the requested name."""


class MissingFrameworkError(RnnspecError):
    """The backend exists but its framework is not installed."""


def _entry_point_backends() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_backends() -> list[str]:
    """Names of every known backend, built in first (whether or not its framework is installed)."""
    names = list(BUILTIN_BACKENDS)
    names += sorted(n for n in _entry_point_backends() if n not in BUILTIN_BACKENDS)
    return names


def backend_for_artifact(path: str) -> str | None:
    """The built-in backend whose native artifact ``path`` is, by its name's ending; None for other files."""
    name = str(path).lower()
    for backend, entry in BUILTIN_BACKENDS.items():
        if any(name.endswith(suffix) for suffix in entry.artifacts):
            return backend
    return None


def get_backend(name: str) -> Any:
    """Import and return the backend object registered as ``name``.

    Raises :class:`BackendNotFoundError` for an unknown name (listing the known ones) and
    :class:`MissingFrameworkError` with the install command when the framework is absent.
    """
    entry = BUILTIN_BACKENDS.get(name)
    if entry is None:
        plugins = _entry_point_backends()
        if name in plugins:
            return plugins[name].load()
        raise BackendNotFoundError(f"unknown backend {name!r}; available: {', '.join(available_backends())}")
    return _load(name, entry, "backend")


def get_exporter(fmt: str) -> Any:
    """The function that writes export format ``fmt`` (``onnx``, ``torch``, ``keras``)."""
    entry = EXPORT_FORMATS.get(fmt)
    if entry is None:
        raise BackendNotFoundError(f"unknown export format {fmt!r}; available: {', '.join(EXPORT_FORMATS)}")
    return _load(fmt, entry, "export")


def _load(name: str, entry: BackendEntry, what: str) -> Any:
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing in entry.framework_modules:
            hint = f"pip install 'rnnspec[{entry.extra}]'" if entry.extra else "pip install numpy"
            raise MissingFrameworkError(
                f"the {name} {what} needs {missing}, which is not installed; install it with: {hint}"
            ) from None
        if exc.name is not None and module_name.startswith(exc.name):
            raise BackendNotFoundError(
                f"the {name} {what} is not part of this installation of rnnspec ({module_name} is missing); "
                "reinstall rnnspec"
            ) from None
        raise
    try:
        return getattr(module, attr)
    except AttributeError:
        raise BackendNotFoundError(f"{module_name} does not define {attr}; the {name} {what} is broken") from None
