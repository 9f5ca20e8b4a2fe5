"""The JSON Schema of the spec, for editors (yaml-language-server) and other tools."""

from __future__ import annotations

from typing import Any

from rnnspec.lang.spec import ModelSpec

__all__ = ["SCHEMA_ID", "spec_schema"]

SCHEMA_ID = "https://rnnspec.invalid/schema/v1/rnnspec.schema.json"


def spec_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of spec format version 1 (1, 1.1 and 1.2), with a description on every field."""
    schema = ModelSpec.model_json_schema(mode="validation")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
    schema["title"] = "rnnspec model spec (format 1.2)"
    return schema
