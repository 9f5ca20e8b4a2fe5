"""Loading a spec: parse the file, validate it, and turn every problem into a located :class:`Issue`."""

from __future__ import annotations

import difflib
import weakref
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from rnnspec.lang.errors import Issue, SpecError, format_path
from rnnspec.lang.layers import (
    KERAS_CELL_NAMES,
    KINDS,
    PLACEMENTS,
    RECURRENT_KINDS,
    DenseSpec,
    entry_forms,
    entry_kind,
    entry_kinds,
    one_of,
)
from rnnspec.lang.losses import LOSSES
from rnnspec.lang.source import Source, parse_text, read_source
from rnnspec.lang.spec import (
    CELL_TAGS,
    OPTIMIZER_TAGS,
    SGD,
    Adam,
    CrossFieldIssues,
    EmbeddingSpec,
    InputSpec,
    LossName,
    LossSpec,
    ModelSpec,
    RMSprop,
    TrainingSpec,
)

__all__ = ["base_dir_of", "load_spec", "loads_spec", "set_base_dir", "spec_from_dict"]

_CELLS: dict[str, type[BaseModel]] = dict(RECURRENT_KINDS)
_ENTRY_TAGS = tuple(cls.kind for cls in (*entry_kinds("recurrent"), *entry_kinds("head")))
_LOSS_NAMES: tuple[str, ...] = LossName.__args__  # type: ignore[attr-defined]
_KERAS_LOSS_NAMES = {alias: name for name, kind in LOSSES.items() for alias in kind.keras_names}
"""Keras's long names and aliases of the losses rnnspec names (declared by each loss)."""
_OPTIMIZERS: dict[str, type[BaseModel]] = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}
_SECTIONS: dict[str, type[BaseModel]] = {
    "input": InputSpec,
    "embedding": EmbeddingSpec,
    "head": DenseSpec,
    "training": TrainingSpec,
}


def load_spec(path: str | Path) -> ModelSpec:
    """Load and validate a spec file (YAML or JSON).

    Raises :class:`rnnspec.SpecError` listing every problem, each with its file, line, column and
    field path::

        >>> spec = load_spec("specs/imdb_lstm.yaml")
        >>> spec.recurrent[0].cell
        'lstm'

    The spec's folder is where the relative paths it names start (:func:`base_dir_of`).
    """
    spec = _validate(read_source(path))
    set_base_dir(spec, Path(path).resolve().parent)
    return spec


_BASE_DIRS: dict[int, str] = {}


def set_base_dir(spec: ModelSpec, folder: str | Path | None) -> None:
    """Where ``spec``'s relative file paths start (``embedding.weights``...): its file's folder. Kept beside the
    spec, not in it, so that two equal specs stay equal wherever their files are; None: the working directory."""
    if folder is None:
        return
    if id(spec) not in _BASE_DIRS:
        weakref.finalize(spec, _BASE_DIRS.pop, id(spec), None)
    _BASE_DIRS[id(spec)] = str(folder)


def base_dir_of(spec: ModelSpec) -> str | None:
    """The folder ``spec``'s relative file paths start from (:func:`set_base_dir`; None: the working directory)."""
    return _BASE_DIRS.get(id(spec))


def loads_spec(text: str, *, file: str | None = None, fmt: str | None = None) -> ModelSpec:
    """Like :func:`load_spec`, from text (``fmt``: ``"yaml"``, ``"json"`` or None to guess)."""
    return _validate(parse_text(text, file=file, fmt=fmt))


def spec_from_dict(data: dict[str, Any]) -> ModelSpec:
    """Validate a spec given as a Python dict (errors carry field paths but no line numbers)."""
    if isinstance(data, ModelSpec):
        return data
    return _validate(Source(data=data, file=None))


def _version_issue(source: Source) -> Issue | None:
    """``rnnspec: true`` and ``rnnspec: 1.0`` equal 1 in Python, so pydantic takes them; versions are 1, 1.1 and 1.2."""
    data = source.data
    value = data.get("rnnspec") if isinstance(data, dict) else None
    if not (isinstance(value, bool) or (isinstance(value, float) and value == 1.0)):
        return None
    line, column = source.locate(("rnnspec",), key=False) or (None, None)
    shown = str(value).lower() if isinstance(value, bool) else repr(value)
    return Issue(
        message=f"unsupported spec format version {shown}",
        path=("rnnspec",),
        file=source.file,
        line=line,
        column=column,
        received=f"{shown} ({'boolean' if isinstance(value, bool) else 'number'})",
        expected="1, 1.1 or 1.2",
        fix="write `rnnspec: 1.2` (or `rnnspec: 1.1`, `rnnspec: 1`)",
    )


def _validate(source: Source) -> ModelSpec:
    version = _version_issue(source)
    if version is not None:
        raise SpecError([version])
    try:
        return ModelSpec.model_validate(source.data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_url=False):
            issues.extend(_translate(err, source))
        issues.sort(key=lambda i: (i.line or 0, i.column or 0))
        raise SpecError(issues) from None


# -- pydantic errors → issues ----------------------------------------------------------------------


def _clean_loc(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Drop the discriminator tags pydantic puts in the location of a tagged union."""
    out: list[str | int] = []
    tagged = False
    for part in loc:
        if not tagged and out == ["head"] and part in ("mapping", "list"):
            continue
        if (
            not tagged
            and len(out) == 2
            and out[0] in ("recurrent", "head")
            and isinstance(out[1], int)
            and part in _ENTRY_TAGS
        ):
            tagged = True
            continue
        if tuple(out) == ("training", "optimizer") and part in OPTIMIZER_TAGS:
            continue
        out.append(part)
    return tuple(out)


_SELF_NAMED = {cls.entry_key: cls for cls in KINDS if cls.entry_key == cls.kind}
"""List kinds written by their own name (``{dropout: RATE}``, ``{layer_norm: {}}``), by that key."""


def _options_model(model: type[BaseModel] | None, key: str | int) -> type[BaseModel] | None:
    """The model of an entry's nested options (``layer_norm: {epsilon: ...}``), if ``key`` holds one."""
    field = model.model_fields.get(str(key)) if model is not None else None
    annotation = field.annotation if field is not None else None
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _get(data: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _model_at(path: tuple[str | int, ...], data: Any) -> type[BaseModel] | None:
    if not path:
        return ModelSpec
    if len(path) == 1:
        return _SECTIONS.get(str(path[0]))
    if len(path) == 2 and path[0] in ("recurrent", "head"):
        entry = _get(data, path)
        if not isinstance(entry, dict):
            return None
        cls = entry_kind(entry)
        if cls is not None and path[0] not in cls.placements:
            return None  # a Dense in `recurrent`: a layer that lacks its `cell`
        if cls is None and "cell" not in entry and path[0] == "head":
            return DenseSpec  # a head entry without a kind's key reads as a Dense layer
        return cls
    if len(path) == 3 and path[0] in ("recurrent", "head"):
        return _options_model(_model_at(path[:2], data), path[2])  # `{layer_norm: {epsilon: ...}}`
    if path == ("training", "optimizer"):
        name = _get(data, path)
        name = name.get("name") if isinstance(name, dict) else name
        return _OPTIMIZERS.get(name) if isinstance(name, str) else None
    if path == ("training", "loss"):
        return LossSpec
    return None


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    kind = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "mapping",
        type(None): "null",
    }.get(type(value), type(value).__name__)
    return f"{text} ({kind})"


def _suggest(word: Any, choices: list[str]) -> str | None:
    if not isinstance(word, str):
        return None
    hits = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return hits[0] if hits else None


def _translate(err: dict[str, Any], source: Source) -> list[Issue]:
    kind = err["type"]
    loc = _clean_loc(err["loc"])
    value = err.get("input")
    ctx = err.get("ctx") or {}

    def issue(path: tuple[str | int, ...], message: str, *, key: bool = False, **kw: Any) -> Issue:
        pos = source.locate(path, key=key)
        return Issue(
            message=message,
            path=path,
            file=source.file,
            line=pos[0] if pos else None,
            column=pos[1] if pos else None,
            **kw,
        )

    if kind == "value_error" and isinstance(ctx.get("error"), CrossFieldIssues):
        return [
            issue((*loc, *ci.path), ci.message, key=True, received=ci.received, expected=ci.expected, fix=ci.fix)
            for ci in ctx["error"].issues
        ]

    if kind == "extra_forbidden":
        return [_unknown_key(loc, source, issue)]

    if kind == "missing":
        parent, key = loc[:-1], loc[-1]
        model = _model_at(parent, source.data)
        desc = model.model_fields[key].description if model and key in model.model_fields else None
        return [
            issue(
                loc,
                f"missing required key `{key}`",
                key=True,
                received="nothing",
                expected=desc or f"a value for `{key}`",
                fix=f"add `{key}: ...` here",
            )
        ]

    if kind == "entry_kind":
        return [_entry_issue(loc, value, source, issue)]

    if kind == "head_form":
        return [
            issue(
                loc,
                "head must be one Dense layer (a mapping) or a list of layers",
                received=_describe(value),
                expected="`head: {units: N, activation: ...}` or a list of such entries and `{dropout: RATE}`",
                fix="write the head as a mapping, or as a list with one entry per layer",
            )
        ]

    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = ctx.get("discriminator", "").strip("'")
        choices = ", ".join(CELL_TAGS if tag == "cell" else OPTIMIZER_TAGS)
        if kind == "union_tag_not_found":
            return [
                issue(
                    (*loc, tag),
                    f"missing required key `{tag}`",
                    key=True,
                    received="nothing",
                    expected=f"one of: {choices}",
                    fix=f"add `{tag}: ...` with one of: {choices}",
                )
            ]
        got = ctx.get("tag")
        hint = _suggest(got, choices.split(", "))
        what = "cell" if tag == "cell" else "optimizer"
        # `optimizer: adamw` is the short form of `optimizer: {name: adamw}`: the value sits at loc itself
        short = isinstance(_get(source.data, loc), str)
        where, key = (loc, str(loc[-1])) if short else ((*loc, tag), tag)
        return [
            issue(
                where,
                f"unknown {what} {got!r}" + (f"; did you mean {hint!r}?" if hint else ""),
                received=_describe(_get(source.data, where)),
                expected=f"one of: {choices}",
                fix=f"set `{key}: {hint}`" if hint else f"set `{key}:` to one of: {choices}",
            )
        ]

    if kind == "literal_error":
        expected = ctx.get("expected", "")
        if loc == ("rnnspec",):
            return [
                issue(
                    loc,
                    f"unsupported spec format version {value!r}",
                    received=_describe(value),
                    expected="rnnspec: 1, 1.1 or 1.2 (the versions this rnnspec reads)",
                    fix="set `rnnspec: 1.2`; a newer format needs a newer rnnspec",
                )
            ]
        choices = [c.strip().strip("'") for c in expected.replace(" or ", ", ").split(",")]
        hint = _suggest(value, choices)
        if loc[-2:] in (("loss", "name"), ("training", "loss")) and isinstance(value, str):
            hint = _KERAS_LOSS_NAMES.get(value.lower().replace(" ", "_")) or hint
        return [
            issue(
                loc,
                "value not allowed" + (f"; did you mean {hint!r}?" if hint else ""),
                received=_describe(value),
                expected=f"one of: {expected}",
                fix=f"use {hint!r}" if hint else "pick one of the expected values",
            )
        ]

    return [_value_issue(kind, loc, value, ctx, err["msg"], issue)]


_TYPE_NAMES = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "model_type": "a mapping",
    "dict_type": "a mapping",
    "model_attributes_type": "a mapping",
    "int_parsing": "an integer",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
}


def _value_issue(kind: str, loc: tuple[str | int, ...], value: Any, ctx: dict[str, Any], msg: str, issue: Any) -> Issue:
    received = _describe(value)
    if kind in _TYPE_NAMES:
        expected = _TYPE_NAMES[kind]
        fix = f"write {expected} here"
        if kind == "int_type" and isinstance(value, str) and value.strip().isdigit():
            fix = f"remove the quotes: {value.strip()}"
        elif kind == "int_type" and isinstance(value, float) and value.is_integer():
            fix = f"write {int(value)}"
        elif kind == "bool_type" and isinstance(value, str):
            fix = "write true or false without quotes"
        return issue(loc, f"wrong type: expected {expected}", received=received, expected=expected, fix=fix)
    bounds = {
        "greater_than": ("greater than", "gt"),
        "greater_than_equal": ("at least", "ge"),
        "less_than": ("less than", "lt"),
        "less_than_equal": ("at most", "le"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        limit = ctx.get(key)
        expected = f"a number {words} {limit}"
        return issue(
            loc,
            f"value out of range: must be {words} {limit}",
            received=received,
            expected=expected,
            fix=f"use {expected}",
        )
    if kind == "string_pattern_mismatch":
        return issue(
            loc,
            "invalid name",
            received=received,
            expected="letters, digits, '-' and '_' only",
            fix="replace spaces and other characters with '-' or '_'",
        )
    if kind in ("too_short", "string_too_short"):
        return issue(
            loc,
            "must not be empty",
            received=received,
            expected="at least one item" if kind == "too_short" else "at least one character",
            fix="add at least one entry" if kind == "too_short" else "write a non-empty value",
        )
    if kind == "finite_number":
        return issue(
            loc,
            "must be a finite number (NaN and infinity make training produce NaN)",
            received=received,
            expected="a finite number",
            fix="write a finite number here (Keras's default if unsure)",
        )
    if kind == "string_too_long":
        return issue(
            loc,
            "too long",
            received=received,
            expected=f"at most {ctx.get('max_length')} characters",
            fix="use a shorter name",
        )
    return issue(loc, msg, received=received)


def _unknown_key(loc: tuple[str | int, ...], source: Source, issue: Any) -> Issue:
    parent, key = loc[:-1], loc[-1]
    model = _model_at(parent, source.data)
    allowed = [f for f in model.model_fields if f != "cell"] if model else []
    if model is not None and "cell" in model.model_fields:
        allowed.insert(0, "cell")
    hint = _suggest(key, allowed)
    expected = f"one of: {', '.join(allowed)}" if allowed else None
    elsewhere = any(key in cls.model_fields for name, cls in _SECTIONS.items() if (name,) != parent)
    if hint and not (elsewhere and key != "name"):
        return issue(
            loc,
            f"unknown key `{key}`; did you mean `{hint}`?",
            key=True,
            received=f"`{key}`",
            expected=expected,
            fix=f"rename `{key}` to `{hint}`",
        )
    # A key that belongs to another cell or section gets told where it belongs.
    if len(parent) == 2 and parent[0] == "recurrent":
        owners = [tag for tag, cls in _CELLS.items() if key in cls.model_fields]
        cell = _get(source.data, (*parent, "cell"))
        if owners and cell is not None:
            return issue(
                loc,
                f"`{key}` applies only to {' and '.join(owners)} layers, and this layer is {cell}",
                key=True,
                received=f"`{key}` on a {cell} layer",
                expected=expected,
                fix=f"remove `{key}`, or change `cell` to {owners[0]}",
            )
    own = _SELF_NAMED.get(str(key))
    if own is not None and (parent[:1] == ("head",) or parent == ("embedding",)):
        in_head = parent[:1] == ("head",) and "head" in own.placements
        return issue(
            loc,
            f"`{key}` is a layer of its own here, not an option of this one",
            key=True,
            received=f"`{key}` in {format_section(parent)}",
            expected=expected,
            fix=f"remove it here and add an entry `- {own.entry_form.strip('`')}` to the "
            + ("`head` list" if in_head else "start of the `recurrent` list"),
        )
    dedented = _dedented_from(loc, source)
    if dedented is not None:
        section = format_path(dedented)
        return issue(
            loc,
            f"`{key}` is not indented, so it left `{section}` (the mapping just above it) for {format_section(parent)}",
            key=True,
            received=f"`{key}` at the indentation of {format_section(parent)}",
            expected=f"`{key}` inside `{section}`",
            fix=f"indent `{key}` to line up with the other keys of `{section}`",
        )
    homes = [f"`{name}`" for name, cls in _SECTIONS.items() if key in cls.model_fields and (name,) != parent]
    if any(key in cls.model_fields for cls in _CELLS.values()) and parent != ("recurrent",):
        homes.append("each layer under `recurrent`")
    where = format_section(parent)
    if homes and key != "name":
        return issue(
            loc,
            f"`{key}` does not belong in {where}; it belongs in {homes[0]}",
            key=True,
            received=f"`{key}` in {where}",
            expected=expected,
            fix=f"move `{key}` into {homes[0]}",
        )
    return issue(
        loc,
        f"unknown key `{key}` in {where}",
        key=True,
        received=f"`{key}`",
        expected=expected,
        fix="remove it, or check the spec reference (docs/spec.md)",
    )


def _dedented_from(loc: tuple[str | int, ...], source: Source) -> tuple[str | int, ...] | None:
    """The nested mapping a key was dedented out of: the one holding the key written just above it, when that
    mapping takes the key (``units:`` at column 1 right after ``- cell: lstm``)."""
    pos = source.key_positions.get(loc)
    if pos is None:
        return None
    above = [(p, path) for path, p in source.key_positions.items() if p < pos and len(path) > len(loc)]
    if not above:
        return None
    _, path = max(above)
    container = path[:-1]
    if container[: len(loc) - 1] != loc[:-1]:
        return None
    model = _model_at(container, source.data)
    if model is None or loc[-1] not in model.model_fields or loc[-1] == "name":
        return None
    value = _get(source.data, container)
    if isinstance(value, dict) and loc[-1] in value:
        return None
    return container


def format_section(path: tuple[str | int, ...]) -> str:
    return f"`{format_path(path)}`" if path else "the top level"


def _entry_issue(loc: tuple[str | int, ...], value: Any, source: Source, issue: Any) -> Issue:
    """An entry of ``recurrent`` or ``head`` whose kind is unknown: a bad ``cell``, or no kind at all."""
    section = loc[0]  # an entry of `recurrent` or `head`: its location has the section first
    kinds = entry_forms(str(section))
    if not isinstance(value, dict):
        return issue(loc, f"each entry of `{section}` must be a mapping", received=_describe(value), expected=kinds,
                     fix="write the entry as `- {cell: lstm, units: 32}`" if section == "recurrent"
                     else "write the entry as `- {units: 1, activation: sigmoid}`")  # fmt: skip
    placed = entry_kind(value)
    if placed is not None and section not in placed.placements and not (section == "recurrent" and placed is DenseSpec):
        homes = one_of([f"`{home}`" for home in PLACEMENTS if home in placed.placements], "and")
        return issue(
            loc,
            f"`{placed.kind}` entries cannot be in `{section}`; they belong in {homes}",
            received=f"{placed.entry_form} in `{section}`",
            expected=kinds,
            fix=f"move it to {homes}, or remove it",
        )
    if "cell" in value:
        got = value["cell"]
        choices = list(CELL_TAGS)
        hint = KERAS_CELL_NAMES.get(got.lower().replace("_", "")) if isinstance(got, str) else None
        hint = hint or _suggest(got, choices)
        return issue(
            (*loc, "cell"),
            f"unknown cell {got!r}" + (f"; did you mean {hint!r}?" if hint else ""),
            received=_describe(got),
            expected=f"one of: {', '.join(choices)}",
            fix=f"set `cell: {hint}`" if hint else f"set `cell:` to one of: {', '.join(choices)}",
        )
    if section == "recurrent" and "units" in value:
        return issue(
            (*loc, "cell"),
            "missing required key `cell`",
            key=True,
            received="nothing",
            expected=f"one of: {', '.join(CELL_TAGS)}",
            fix=f"add `cell: ...` with one of: {', '.join(CELL_TAGS)}",
        )
    keys = ", ".join(f"`{k}`" for k in value) or "an empty mapping"
    return issue(
        loc,
        f"cannot tell what kind of layer this entry of `{section}` is",
        received=keys,
        expected=kinds,
        fix="add `cell: ...` for a recurrent layer" if section == "recurrent" else "add `units: N` for a Dense layer",
    )
