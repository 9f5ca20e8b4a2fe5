"""The contracts moved from rnnspec.runtime to rnnspec.core; the old module names still work, with a warning."""

from __future__ import annotations

import importlib

import pytest

MOVED = {"kinds": "KindRegistry", "weights": "weight_shapes", "backend": "Backend", "registry": "get_backend"}


@pytest.mark.parametrize(("module", "name"), MOVED.items())
def test_the_old_module_name_gives_the_same_object_and_says_where_it_went(module: str, name: str):
    old = importlib.import_module(f"rnnspec.runtime.{module}")
    with pytest.warns(DeprecationWarning, match=f"moved to rnnspec.core.{module}.{name}"):
        value = getattr(old, name)
    assert value is getattr(importlib.import_module(f"rnnspec.core.{module}"), name)
    with pytest.raises(AttributeError):
        _ = old.no_such_name
