"""A spec with thousands of mistakes gives a short error (issue 20: refusal lists capped, first 20 then
"and N more"), through the one helper of the refusal lists (rnnspec.util.cap_lines)."""

from __future__ import annotations

import pytest

from rnnspec.lang.errors import SpecError
from rnnspec.lang.loader import loads_spec


def test_a_spec_with_3000_bad_layers_lists_20_errors_then_the_count() -> None:
    layers = ", ".join("{cell: lstm, units: -1}" for _ in range(3000))
    text = f"rnnspec: 1.1\nname: w\ninput: {{features: 3}}\nrecurrent: [{layers}]\nhead: {{units: 1}}\n"
    with pytest.raises(SpecError) as info:
        loads_spec(text)
    n = len(info.value.issues)
    assert n >= 3000
    rendered = str(info.value)
    assert rendered.startswith(f"{n} errors in spec")
    assert rendered.endswith(f"... and {n - 20:,} more")
    assert len(rendered.splitlines()) <= 20 * 6 + 2
