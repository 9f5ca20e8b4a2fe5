"""The backend registry: loud on unknown names, one-line install hint for a missing framework."""

from __future__ import annotations

import pytest

from rnnspec.runtime import registry
from rnnspec.runtime.registry import BackendEntry, BackendNotFoundError, MissingFrameworkError, get_backend


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

    core = Path(registry.__file__).parent
    users = sorted(p.name for p in core.glob("*.py") if "rnnspec_backends" in p.read_text())
    assert users == ["registry.py"]
