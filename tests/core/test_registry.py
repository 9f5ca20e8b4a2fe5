"""The backend registry: loud on unknown names, one-line install hint for a missing framework."""

from __future__ import annotations

import pytest

from rnnspec.core import registry
from rnnspec.core.registry import BackendEntry, BackendNotFoundError, MissingFrameworkError, get_backend


def test_builtin_backends_are_listed():
    assert registry.available_backends()[:3] == ["keras", "torch", "numpy"]


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(BackendNotFoundError, match="unknown backend 'jax'; available: keras, torch, numpy"):
        get_backend("jax")


def test_missing_framework_names_the_extra(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(
        registry.BUILTIN_BACKENDS,
        "fake",
        BackendEntry(
            "rnnspec_test_missing_framework_xyz.backend:BACKEND",
            "fake",
            ("rnnspec_test_missing_framework_xyz",),
        ),
    )
    with pytest.raises(MissingFrameworkError) as info:
        get_backend("fake")
    assert "pip install 'rnnspec[fake]'" in str(info.value)


def test_missing_backend_module_is_not_reported_as_a_framework(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(registry.BUILTIN_BACKENDS, "ghost", BackendEntry("rnnspec_backends.ghost:BACKEND", None))
    with pytest.raises(BackendNotFoundError, match="reinstall rnnspec"):
        get_backend("ghost")


def test_the_core_names_the_backend_package_in_one_place():
    from pathlib import Path

    core = Path(registry.__file__).parent.parent
    users = sorted(p.name for p in core.rglob("*.py") if "rnnspec_backends" in p.read_text())
    assert users == ["registry.py"]


def test_artifacts_are_matched_to_their_backend_by_name():
    assert registry.backend_for_artifact("out/m.keras") == "keras"
    assert registry.backend_for_artifact("out/m.torch.safetensors") == "torch"
    assert registry.backend_for_artifact("out/m.numpy.safetensors") == "numpy"
    assert registry.backend_for_artifact("out/m.weights.safetensors") is None


class _EntryPoint:
    """What importlib.metadata returns for an installed plugin: ``load()`` gives the backend object."""

    def __init__(self, backend):
        self.backend = backend

    def load(self):
        return self.backend


def test_cli_takes_an_entry_point_backend_and_lists_the_known_ones(monkeypatch, capsys):
    from rnnspec_backends.numpy.model import NumpyBackend

    from rnnspec.cli import main
    from tests.conftest import SPECS

    class Plugin(NumpyBackend):
        name = "plugin"

    monkeypatch.setattr(registry, "_entry_point_backends", lambda: {"plugin": _EntryPoint(Plugin())})
    assert registry.available_backends() == ["keras", "torch", "numpy", "plugin"]
    assert main(["build", str(SPECS / "weather_regression.yaml"), "-b", "plugin"]) == 0
    assert "parameter counts: plugin model 4,641 = analytic 4,641" in capsys.readouterr().out
    assert main(["build", str(SPECS / "weather_regression.yaml"), "-b", "jax"]) == 2
    err = " ".join(capsys.readouterr().err.replace("│", " ").split())  # typer draws a box around usage errors
    assert "unknown backend 'jax'; available: keras, torch, numpy, plugin" in err
    assert main(["train", str(SPECS / "weather_regression.yaml"), "-b", "plugin"]) == 1
    assert "the plugin backend is forward-only" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(registry.BUILTIN_BACKENDS))
def test_the_table_declares_what_each_builtin_backend_offers(name: str):
    """The table lets a command choose a backend without importing its framework: it must say what the loaded
    backend declares (the protocols it implements), no more, no less."""
    from rnnspec.core.backend import BACKEND_CAPABILITIES, LiveModels, capabilities_of
    from tests.parity import backend_or_skip

    impl = backend_or_skip(name)
    entry = registry.BUILTIN_BACKENDS[name]
    assert capabilities_of(impl) == entry.capabilities
    assert entry.capabilities <= set(BACKEND_CAPABILITIES)
    assert bool(entry.model_modules) == isinstance(impl, LiveModels)


def test_capabilities_are_asked_of_the_declaration():
    """An object offers a capability when it has the protocol's members; ``supports`` also reads a flag's value."""
    from rnnspec.core.backend import QuietTraining, Threads, supports

    class Quiet:
        quiet_training = False

        def set_threads(self, threads: int) -> None:
            pass

    assert isinstance(Quiet(), Threads) and supports(Quiet(), "threads")
    assert isinstance(Quiet(), QuietTraining) and not supports(Quiet(), "quiet_training")
    assert not supports(object(), "threads")
    with pytest.raises(ValueError, match="unknown capability 'thread'"):
        supports(Quiet(), "thread")


def test_the_registry_answers_what_commands_ask_without_naming_backends():
    assert registry.reference_backend() == "numpy"
    assert registry.backends_with("trains") == ["torch", "keras"]
    assert registry.backends_with("state_dicts") == ["torch"]
    assert registry.compared_backends()[:3] == ["numpy", "torch", "keras"]
    assert registry.backend_entry("keras").weight_copies == 2
    assert registry.backend_for_format("rnnspec-torch-state-dict/1") == "torch"
    assert registry.backend_owning(object()) is None


def test_a_plugin_that_is_not_a_backend_is_refused_naming_what_it_lacks(monkeypatch: pytest.MonkeyPatch):
    class Half:
        name = "half"

        def build(self, spec):
            return None

    monkeypatch.setattr(registry, "_entry_point_backends", lambda: {"half": _EntryPoint(Half())})
    with pytest.raises(BackendNotFoundError, match="a Half without count_params, get_weights, load_artifact"):
        get_backend("half")
