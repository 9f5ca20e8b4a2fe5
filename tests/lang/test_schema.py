"""The JSON Schema: shipped copy is current, every field is described, every shipped spec conforms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rnnspec.lang.schema import spec_schema
from tests.conftest import REPO, SPECS

SHIPPED = REPO / "docs" / "rnnspec.schema.json"


def test_shipped_schema_is_current():
    assert json.loads(SHIPPED.read_text()) == spec_schema(), "run: rnnspec schema -o docs/rnnspec.schema.json"


def _properties(schema: dict) -> list[tuple[str, dict]]:
    found = list(schema.get("properties", {}).items())
    for sub in schema.get("$defs", {}).values():
        found += [(f"{sub.get('title')}.{k}", v) for k, v in sub.get("properties", {}).items()]
    return found


def test_every_field_has_a_description():
    missing = [name for name, prop in _properties(spec_schema()) if not prop.get("description")]
    assert missing == []


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_specs_conform_to_the_schema(path: Path):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(yaml.safe_load(path.read_text()), spec_schema())


def test_schema_rejects_a_typo():
    jsonschema = pytest.importorskip("jsonschema")
    data = yaml.safe_load((SPECS / "imdb_lstm.yaml").read_text())
    data["recurrent"][0]["retrun_sequences"] = True
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, spec_schema())
