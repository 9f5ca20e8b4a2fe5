"""The one table through which the core reaches a framework backend.

Backends are named by dotted paths and imported only when asked for (on ``build``), so
``validate``, ``summary`` and ``schema`` never import a framework; the protocols of
:mod:`rnnspec.core.backend` are imported when first asked about, so ``import rnnspec`` stays light.
Third-party packages add backends through the ``rnnspec.backends`` entry-point group.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from rnnspec.lang.errors import RnnspecError

__all__ = [
    "BUILTIN_BACKENDS",
    "DEFAULT_BACKEND",
    "ENTRY_POINT_GROUP",
    "BackendEntry",
    "BackendNotFoundError",
    "MissingFrameworkError",
    "available_backends",
    "backend_entry",
    "backend_for_artifact",
    "backend_for_convention",
    "backend_for_format",
    "backend_owning",
    "backends_with",
    "compared_backends",
    "describe_backends",
    "format_of_file",
    "get_backend",
    "get_exporter",
    "get_runner",
    "reference_backend",
]

ENTRY_POINT_GROUP = "rnnspec.backends"
DEFAULT_BACKEND = "torch"
"""The backend ``build`` and the commands use when none is named."""
# The framework backends live in the folder backends/, installed as the package
# `rnnspec_backends`. This table is the only place in the core that names it.
_PACKAGE = "rnnspec_backends"


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend lives, which install extra brings its framework, and what the core may know of it before
    importing it (a plugin's entry is made from its loaded object: :func:`backend_entry`)."""

    target: str
    """``module:attribute`` of the backend object."""
    extra: str | None
    """The ``pip install 'rnnspec[EXTRA]'`` that provides its framework."""
    framework_modules: tuple[str, ...] = ()
    """Top-level modules whose absence means the framework is not installed."""
    artifacts: tuple[str, ...] = ()
    """File-name endings of the native artifacts its ``load_artifact`` reads (for ``convert``); for an export
    format, of the files its runner opens by themselves (for ``import``'s proof against the original)."""
    runner: str | None = None
    """For an export format: ``module:function`` that opens the written files with the format's own runtime,
    ``fn(paths, nudge=None) -> predict or None`` (None: that runtime is not installed; ``nudge``, a seed: every float32
    weight moved by one ulp first, for the proof's noise floor), for the export's proof."""
    artifact_format: str | None = None
    """The ``format`` its artifacts carry in their metadata, where an artifact is a safetensors file whose name
    does not say (for ``convert``)."""
    capabilities: frozenset[str] = frozenset()
    """The optional capabilities the backend declares (names of :data:`~rnnspec.core.backend.BACKEND_CAPABILITIES`),
    so that a command can choose a backend without importing its framework; tests/core/test_registry.py checks them
    against the loaded backend."""
    role: str = "framework"
    """``reference``: the float64 NumPy reference the other backends are compared with (listed first by
    ``check``); ``framework``: a backend that builds models of a framework."""
    model_modules: tuple[str, ...] = ()
    """Top-level modules of its framework's model classes: an object whose class comes from one is a model the
    backend drives (``live_models``), found without importing the framework."""
    model_convention: str | None = None
    """The weight convention its framework's own models are read in (``keras`` or ``torch``: which importer maps
    their tensors), for a backend that drives them (``live_models``)."""
    weight_copies: int = 1
    """How many copies of the weights a build holds while it is made (the memory check before a build)."""
    plot_style: str = "-"
    """Its line style in plots of training curves (matplotlib format)."""
    compare_order: int = 100
    """Its place when backends are compared (``check``'s rows: the reference first, then by this number)."""

    def offers(self, capability: str) -> bool:
        """Whether the backend declares ``capability``."""
        return capability in self.capabilities


BUILTIN_BACKENDS: dict[str, BackendEntry] = {
    "keras": BackendEntry(
        f"{_PACKAGE}.keras.model:BACKEND", "keras", ("keras", "tensorflow"), (".keras",),
        capabilities=frozenset({"trains", "threads", "quiet_training", "live_models"}),
        model_modules=("keras", "tf_keras"), model_convention="keras", weight_copies=2,
        plot_style="b-", compare_order=2,
    ),
    "torch": BackendEntry(
        f"{_PACKAGE}.torch.model:BACKEND", "torch", ("torch",), (".torch.safetensors",),
        artifact_format="rnnspec-torch-state-dict/1",
        capabilities=frozenset(
            {"trains", "threads", "matmul_timing", "device_check", "data_parallel", "live_models", "state_dicts"}
        ),
        model_modules=("torch",), model_convention="torch", plot_style="r--", compare_order=1,
    ),
    "numpy": BackendEntry(
        f"{_PACKAGE}.numpy.model:BACKEND", None, ("numpy",), (".numpy.safetensors",),
        capabilities=frozenset({"variants"}), role="reference", compare_order=0,
    ),
}  # fmt: skip
"""The built-in backends, in the order commands list them (``check`` puts the reference first)."""


EXPORT_FORMATS: dict[str, BackendEntry] = {
    "onnx": BackendEntry(
        f"{_PACKAGE}.onnx.export:export_onnx", "onnx", ("onnx", "onnxruntime"), (".onnx",),
        runner=f"{_PACKAGE}.onnx.runner:run_file",
    ),
    "torch": BackendEntry(
        f"{_PACKAGE}.torch.export:export_torch", "torch", ("torch",), runner=f"{_PACKAGE}.torch.runner:run_file"
    ),
    "keras": BackendEntry(
        f"{_PACKAGE}.keras.export:export_keras", "keras", ("keras", "tensorflow"), (".keras", ".h5", ".hdf5"),
        runner=f"{_PACKAGE}.keras.runner:run_file",
    ),
}  # fmt: skip
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


def backend_entry(name: str) -> BackendEntry:
    """What the core knows of backend ``name``: a built-in's row of the table (nothing imported), or for a plugin
    an entry made from its loaded object (its declared capabilities; the defaults for the rest)."""
    entry = BUILTIN_BACKENDS.get(name)
    if entry is not None:
        return entry
    from rnnspec.core.backend import capabilities_of

    impl = get_backend(name)
    plugin = _entry_point_backends()[name]
    return BackendEntry(
        plugin.value if isinstance(plugin, EntryPoint) else name, None, capabilities=capabilities_of(impl)
    )


def backends_with(capability: str, *, plugins: bool = True) -> list[str]:
    """The backends that declare ``capability`` (a name of :data:`~rnnspec.core.backend.BACKEND_CAPABILITIES`),
    in :func:`compared_backends`'s order (torch before keras); a plugin is loaded to ask it (``plugins=False``:
    built-ins only, so nothing is imported), a built-in is not."""
    from rnnspec.core.backend import BACKEND_CAPABILITIES

    if capability not in BACKEND_CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; the declared ones are {', '.join(BACKEND_CAPABILITIES)}")
    names = [name for name in compared_backends() if plugins or name in BUILTIN_BACKENDS]
    return [name for name in names if _offers(name, capability)]


def _offers(name: str, capability: str) -> bool:
    try:
        return backend_entry(name).offers(capability)
    except RnnspecError:  # a plugin that fails to load offers nothing
        return False


def compared_backends() -> list[str]:
    """Every known backend in the order comparisons list them: the reference first (``check``'s default)."""
    names = available_backends()
    return sorted(names, key=lambda name: (_role(name) != "reference", _compare_order(name), names.index(name)))


def _role(name: str) -> str:
    entry = BUILTIN_BACKENDS.get(name)
    return entry.role if entry is not None else "framework"


def _compare_order(name: str) -> int:
    entry = BUILTIN_BACKENDS.get(name)
    return entry.compare_order if entry is not None else BackendEntry.compare_order


def reference_backend() -> str:
    """The backend every other is compared with (the float64 NumPy reference)."""
    return next(name for name, entry in BUILTIN_BACKENDS.items() if entry.role == "reference")


def describe_backends(names: list[str]) -> str:
    """``--backend A`` or ``--backend A or --backend B``..., for messages that say which backends can do a thing."""
    return " or ".join(f"--backend {name}" for name in names) or "a backend that offers it (none is installed)"


def backend_owning(obj: Any) -> str | None:
    """The backend whose framework ``obj`` is a model of (capability ``live_models``), or None: a built-in is
    recognised by its ``model_modules`` without importing its framework, a plugin is asked (``owns``)."""
    from rnnspec.core.backend import LiveModels, class_modules

    roots = class_modules(obj)
    for name in available_backends():
        entry = BUILTIN_BACKENDS.get(name)
        if entry is not None:
            if entry.offers("live_models") and roots & set(entry.model_modules):
                return name
            continue
        try:
            impl = get_backend(name)
        except RnnspecError:
            continue
        if isinstance(impl, LiveModels) and impl.owns(obj):
            return name
    return None


def backend_for_convention(convention: str) -> str:
    """The built-in backend whose framework's own models are in weight convention ``convention`` (``keras`` or
    ``torch``): the one that builds an imported model file of that convention."""
    for name, entry in BUILTIN_BACKENDS.items():
        if entry.model_convention == convention:
            return name
    raise BackendNotFoundError(f"no backend builds models in the {convention!r} weight convention")


def backend_for_artifact(path: str) -> str | None:
    """The built-in backend whose native artifact ``path`` is, by its name's ending; None for other files."""
    name = str(path).lower()
    for backend, entry in BUILTIN_BACKENDS.items():
        if any(name.endswith(suffix) for suffix in entry.artifacts):
            return backend
    return None


def backend_for_format(fmt: str | None) -> str | None:
    """The built-in backend whose artifacts carry ``format: fmt`` in their metadata; None for any other."""
    return next((name for name, entry in BUILTIN_BACKENDS.items() if fmt and entry.artifact_format == fmt), None)


def get_backend(name: str) -> Any:
    """Import and return the backend object registered as ``name``.

    Raises :class:`BackendNotFoundError` for an unknown name (listing the known ones) or a plugin object that is
    not a :class:`~rnnspec.core.backend.Backend`, and :class:`MissingFrameworkError` with the install command when
    the framework is absent.
    """
    entry = BUILTIN_BACKENDS.get(name)
    if entry is None:
        plugins = _entry_point_backends()
        if name in plugins:
            return _checked_plugin(name, _load_plugin(name, plugins[name]))
        raise BackendNotFoundError(f"unknown backend {name!r}; available: {', '.join(available_backends())}")
    return _load(name, entry, "backend")


def _load_plugin(name: str, entry_point: Any) -> Any:
    """The object a plugin's entry point names; any failure of its code is reported, not raised through."""
    try:
        return entry_point.load()
    except Exception as exc:  # the plugin's own import can fail any way; rnnspec reports it as one line
        where = getattr(entry_point, "value", name)
        raise BackendNotFoundError(
            f"the {name} backend (entry point {where} in group {ENTRY_POINT_GROUP}) fails to load: "
            f"{type(exc).__name__}: {exc}. fix: repair or reinstall the package that provides it, or uninstall it"
        ) from None


def _checked_plugin(name: str, impl: Any) -> Any:
    from rnnspec.core.backend import Backend, missing_members

    if isinstance(impl, Backend):
        return impl
    raise BackendNotFoundError(
        f"the {name} backend (entry point group {ENTRY_POINT_GROUP}) is a {type(impl).__name__} without "
        f"{', '.join(missing_members(impl, Backend))}; expected an object with every member of "
        "rnnspec.core.backend.Backend. fix: point the entry point at the backend object (module:BACKEND)"
    )


def get_exporter(fmt: str) -> Any:
    """The function that writes export format ``fmt`` (``onnx``, ``torch``, ``keras``)."""
    entry = EXPORT_FORMATS.get(fmt)
    if entry is None:
        raise BackendNotFoundError(f"unknown export format {fmt!r}; available: {', '.join(EXPORT_FORMATS)}")
    return _load(fmt, entry, "export")


def get_runner(fmt: str) -> Any:
    """The function that runs files written in export format ``fmt``: ``fn(paths, nudge=None) -> predict`` (None where
    the format's runtime is not installed; ``nudge``: see :attr:`BackendEntry.runner`)."""
    entry = EXPORT_FORMATS.get(fmt)
    if entry is None or entry.runner is None:
        raise BackendNotFoundError(f"no runner for export format {fmt!r}; available: {', '.join(EXPORT_FORMATS)}")
    return _load(fmt, entry, "export runner", entry.runner)


def format_of_file(path: str) -> str | None:
    """The export format whose runner opens ``path`` by itself (a ``.keras`` / ``.h5`` model), by its name's
    ending; None for other files."""
    name = str(path).lower()
    found = (fmt for fmt, entry in EXPORT_FORMATS.items() if entry.artifacts and name.endswith(entry.artifacts))
    return next(found, None)


def _load(name: str, entry: BackendEntry, what: str, target: str | None = None) -> Any:
    module_name, _, attr = (target or entry.target).partition(":")
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
