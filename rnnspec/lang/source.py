"""Reading a spec file: bytes → text → data, with the position of every key and value.

YAML is read with PyYAML's safe loader (a tag that would construct a Python object is an
error, never executed); JSON with the standard library. Both give a map from field path to
``(line, column)`` so that later validation errors can be located.
"""

from __future__ import annotations

import dataclasses
import json
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rnnspec.lang.errors import Issue, SpecError

__all__ = ["Source", "parse_text", "read_source"]

Position = tuple[int, int]  # 1-based line and column
PathKey = tuple[str | int, ...]

MAX_BYTES = 1_000_000
MAX_NODES = 100_000
"""The most YAML nodes a spec may expand to, aliases counted each time they are used (a real spec has < 500)."""
MAX_DIGITS = 100
"""The longest integer accepted (Python refuses to read over 4,300 digits; no spec value needs 100)."""
_DECIMAL_INT = re.compile(r"[-+]?[0-9]+")
_YAML11_INT = "tag:yaml.org,2002:int"
_YAML11_FLOAT = "tag:yaml.org,2002:float"


@dataclass
class Source:
    """Parsed data of one spec file and where each piece of it stands in the file."""

    data: Any
    file: str | None
    key_positions: dict[PathKey, Position] = field(default_factory=dict)
    value_positions: dict[PathKey, Position] = field(default_factory=dict)

    def locate(self, path: PathKey, *, key: bool = True) -> Position | None:
        """Position of ``path`` (its key when ``key``), else of its nearest ancestor."""
        table = self.key_positions if key else self.value_positions
        for n in range(len(path), -1, -1):
            sub = path[:n]
            if sub in table:
                return table[sub]
            if sub in self.value_positions:
                return self.value_positions[sub]
        return None


def _issue(file: str | None, message: str, *, pos: Position | None = None, **kw: str) -> Issue:
    line, col = pos if pos is not None else (None, None)
    return Issue(message=message, file=file, line=line, column=col, **kw)


def read_source(path: str | Path) -> Source:
    """Read and parse the spec file at ``path``; raise :class:`SpecError` for any problem."""
    p = Path(path)
    file = str(path)
    if not p.exists():
        raise SpecError(
            [
                _issue(
                    file,
                    "no such file",
                    expected="a path to a .yaml, .yml or .json spec",
                    fix="check the path (relative paths start from the current directory)",
                )
            ]
        )
    if p.is_dir():
        specs = sorted(str(q) for q in p.iterdir() if q.suffix in (".yaml", ".yml", ".json"))[:3]
        hint = f" (it holds {', '.join(specs)})" if specs else ""
        raise SpecError(
            [
                _issue(
                    file,
                    "is a directory, not a spec file",
                    received="a directory",
                    expected="a .yaml, .yml or .json file",
                    fix=f"name one spec file inside it{hint}",
                )
            ]
        )
    try:
        raw = _read_regular(p, file)
    except OSError as exc:
        raise SpecError(
            [_issue(file, f"cannot read the file: {exc.strerror or exc}", fix="check the file's permissions")]
        ) from None
    return parse_bytes(raw, file=file, fmt=_format_of(p))


_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _read_regular(p: Path, file: str) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_BYTES`, checked before reading (no hang, no huge read)."""
    mode = p.stat().st_mode
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise SpecError(
            [
                _issue(
                    file,
                    f"is {kind}, not a spec file",
                    received=kind,
                    expected="a regular .yaml, .yml or .json file",
                    fix="save the spec to a file and pass its path",
                )
            ]
        )
    size = p.stat().st_size
    if size > MAX_BYTES:
        raise SpecError([_too_big(file, size)])
    with p.open("rb") as fh:
        raw = fh.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise SpecError([_too_big(file, len(raw))])
    return raw


def _too_big(file: str | None, size: int) -> Issue:
    return _issue(
        file,
        f"the file is {size:,} bytes; a spec is a small text file",
        expected=f"at most {MAX_BYTES:,} bytes",
        fix="check that this is a spec file",
    )


def _format_of(p: Path) -> str | None:
    return {".json": "json", ".yaml": "yaml", ".yml": "yaml"}.get(p.suffix.lower())


def parse_bytes(raw: bytes, *, file: str | None = None, fmt: str | None = None) -> Source:
    if len(raw) > MAX_BYTES:
        raise SpecError([_too_big(file, len(raw))])
    if b"\x00" in raw:
        raise SpecError(
            [
                _issue(
                    file,
                    "this is a binary file, not a YAML or JSON spec",
                    received="bytes including NUL",
                    expected="UTF-8 text",
                    fix="pass the spec's .yaml or .json file",
                )
            ]
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(
            [
                _issue(
                    file,
                    "the file is not UTF-8 text",
                    pos=(line, 1),
                    received=f"byte 0x{raw[exc.start]:02x} at offset {exc.start}",
                    expected="UTF-8 text",
                    fix="save the spec as UTF-8",
                )
            ]
        ) from None
    return parse_text(text, file=file, fmt=fmt)


def parse_text(text: str, *, file: str | None = None, fmt: str | None = None) -> Source:
    """Parse spec text (YAML, or JSON when ``fmt == "json"`` or the text starts with ``{``)."""
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        raise SpecError(
            [
                _issue(
                    file,
                    "the spec is empty",
                    received="an empty file",
                    expected="a mapping that starts with `rnnspec: 1`",
                    fix="start from one of the examples in specs/",
                )
            ]
        )
    if fmt == "json" or (fmt is None and text.lstrip().startswith("{")):
        source = _parse_json(text, file)
    else:
        source = _parse_yaml(text, file)
    if not isinstance(source.data, dict):
        kind = type(source.data).__name__ if source.data is not None else "null"
        raise SpecError(
            [
                _issue(
                    file,
                    "the spec must be a mapping of keys to values",
                    pos=(1, 1),
                    received=f"a {kind}",
                    expected="a mapping that starts with `rnnspec: 1`",
                    fix="start from one of the examples in specs/",
                )
            ]
        )
    return source


# -- YAML ------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe loader; the composed node tree is walked separately for positions.

    One change to YAML 1.1: ``1e-3`` (an exponent without a dot) is a number, as in YAML 1.2 and
    JSON, not the string PyYAML makes of it.
    """


_Loader.add_implicit_resolver(_YAML11_FLOAT, re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$"), list("-+0123456789"))


def _mark(m: yaml.Mark) -> Position:
    return (m.line + 1, m.column + 1)


def _parse_yaml(text: str, file: str | None) -> Source:
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise SpecError(
            [
                _issue(
                    file,
                    "the text holds a control character that YAML does not allow",
                    pos=(line, column),
                    received=f"character #x{exc.character:04x}",
                    expected="printable text",
                    fix="delete the character",
                )
            ]
        ) from None
    try:
        node = loader.get_single_node()
        issues: list[Issue] = []
        source = Source(data=None, file=file)
        if node is not None:
            _walk(node, (), source, issues, file, [MAX_NODES])
        if issues:
            raise SpecError(issues)
        source.data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_yaml_issue(exc, file)]) from None
    except yaml.YAMLError as exc:
        raise SpecError([_issue(file, f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise SpecError([_issue(file, "the YAML nests too deeply", fix="check the file's structure")]) from None
    except _Expansion:
        raise SpecError(
            [
                _issue(
                    file,
                    f"the YAML expands to more than {MAX_NODES:,} values through its aliases (*name)",
                    received="aliases that repeat aliases (a 'billion laughs' document?)",
                    expected="a spec of a few hundred values",
                    fix="write the values out, or use fewer nested aliases",
                )
            ]
        ) from None
    finally:
        loader.dispose()
    return source


def _tag_text(problem: str) -> str:
    """``... for the tag 'tag:yaml.org,2002:python/name:os.system'`` → ``the tag !!python/name:os.system``."""
    quoted = problem.split("'")
    tag = quoted[1] if len(quoted) >= 3 else problem.split("tag")[-1].strip()
    return "the tag " + tag.replace("tag:yaml.org,2002:", "!!")


def _yaml_issue(exc: yaml.MarkedYAMLError, file: str | None) -> Issue:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in problem:
        return _issue(
            file,
            "YAML tags that construct objects are not allowed in a spec",
            pos=_mark(mark) if mark else None,
            received=_tag_text(problem),
            expected="plain YAML values: mappings, lists, strings, numbers, booleans",
            fix="remove the `!tag`",
        )
    context = f" ({exc.context})" if exc.context else ""
    return _issue(
        file,
        f"invalid YAML: {problem}{context}",
        pos=_mark(mark) if mark else None,
        expected="valid YAML (indent with spaces, `key: value`)",
        fix="check the syntax around this line",
    )


class _Expansion(Exception):
    """The document expands (through aliases) beyond :data:`MAX_NODES` nodes."""


def _walk(
    node: yaml.Node, path: PathKey, source: Source, issues: list[Issue], file: str | None, budget: list[int]
) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise _Expansion
    source.value_positions[path] = _mark(node.start_mark)
    if isinstance(node, yaml.ScalarNode):
        problem = _number_problem(node)
        if problem is not None:
            issue = _issue(file, problem[0], pos=_mark(node.start_mark), received=node.value[:40], **problem[1])
            issues.append(dataclasses.replace(issue, path=path))  # names the field: recurrent[0].units
    elif isinstance(node, yaml.MappingNode):
        seen: dict[Any, Position] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                continue
            pos = _mark(key_node.start_mark)
            if key in seen:
                issues.append(
                    _issue(
                        file,
                        f"key {key!r} appears twice in this mapping",
                        pos=pos,
                        received=f"{key!r} at line {seen[key][0]} and line {pos[0]}",
                        expected="each key once",
                        fix="delete one of the two",
                    )
                )
            seen[key] = pos
            source.key_positions[(*path, key)] = pos
            _walk(value_node, (*path, key), source, issues, file, budget)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            source.key_positions[(*path, i)] = _mark(item.start_mark)
            _walk(item, (*path, i), source, issues, file, budget)


def _number_problem(node: yaml.ScalarNode) -> tuple[str, dict[str, str]] | None:
    """YAML 1.1 number forms that read as something else than they look, and numbers too long to read."""
    value = node.value
    if node.tag == _YAML11_INT:
        if _DECIMAL_INT.fullmatch(value):
            if len(value.lstrip("+-")) > MAX_DIGITS:
                return (
                    f"a number with {len(value.lstrip('+-')):,} digits",
                    {"expected": f"at most {MAX_DIGITS} digits", "fix": "check the value"},
                )
            if len(value.lstrip("+-")) > 1 and value.lstrip("+-").startswith("0"):
                return (
                    f"YAML 1.1 reads {value} as an octal number ({int(value.lstrip('+-'), 8)})",
                    {"expected": "a decimal number without a leading 0", "fix": f"write {int(value)}"},
                )
            return None
        read = yaml.safe_load(value)
        return (
            f"YAML 1.1 reads {value} as the number {read} ({_form(value)})",
            {"expected": "a plain decimal number", "fix": f"write {read} if that is meant, or quote the text"},
        )
    if node.tag == _YAML11_FLOAT and ("_" in value or ":" in value):
        read = yaml.safe_load(value)
        return (
            f"YAML 1.1 reads {value} as the number {read} ({_form(value)})",
            {"expected": "a plain decimal number", "fix": f"write {read} if that is meant, or quote the text"},
        )
    return None


def _form(value: str) -> str:
    if ":" in value:
        return "base 60"
    if "_" in value:
        return "underscores ignored"
    if value.lower().lstrip("+-").startswith("0x"):
        return "hexadecimal"
    if value.lower().lstrip("+-").startswith("0b"):
        return "binary"
    return "octal"


# -- JSON ------------------------------------------------------------------------------------------


def _parse_json(text: str, file: str | None) -> Source:
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                duplicates.append(k)
            out[k] = v
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise SpecError(
            [
                _issue(
                    file,
                    f"invalid JSON: {exc.msg}",
                    pos=(exc.lineno, exc.colno),
                    expected="valid JSON (double-quoted keys, no trailing commas)",
                    fix="check the syntax around this position",
                )
            ]
        ) from None
    except RecursionError:
        raise SpecError([_issue(file, "the JSON nests too deeply", fix="check the file's structure")]) from None
    except ValueError as exc:  # integers over Python's 4,300-digit limit
        raise SpecError([_issue(file, f"invalid JSON: {exc}", fix="check the numbers in the file")]) from None
    source = Source(data=data, file=file)
    # JSON is (nearly) YAML, so the YAML composer finds the positions; tabs are replaced by
    # spaces one for one, which keeps every column.
    try:
        positioned: Source | None = _parse_yaml(text.replace("\t", " "), file)
    except SpecError as exc:
        located_duplicates = [i for i in exc.issues if "appears twice" in i.message]
        if located_duplicates:
            raise SpecError(located_duplicates) from None
        positioned = None
    if positioned is not None:
        source.key_positions, source.value_positions = positioned.key_positions, positioned.value_positions
    elif duplicates:
        raise SpecError(
            [
                _issue(
                    file,
                    f"key {k!r} appears twice in one object",
                    expected="each key once",
                    fix="delete one of the two",
                )
                for k in duplicates
            ]
        )
    return source
