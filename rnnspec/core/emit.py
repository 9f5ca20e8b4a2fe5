"""One emitter per language rnnspec writes for a tool to parse back: Python, YAML, XML, HTML.

Every value that goes into generated text (a file name, a layer name, a title, a message) goes
through these functions, never through a bare f-string, so that no value can end a string or a
comment early, add a line, a key or an element, or make the text fail to parse:

- Python: :func:`py_literal` (``repr``), :func:`py_string_body` / :func:`py_docstring` (text inside a
  string literal: quotes, backslashes and unprintable characters escaped) and :func:`py_identifier`
  (a valid ASCII identifier, not a keyword, not starting with ``_``, so never mangled inside a class,
  and unique among those already taken);
- names in a spec: :func:`spec_name` (``[A-Za-z0-9_-]``, at most 64 characters, unique);
- YAML: :func:`yaml_document` (PyYAML's safe dumper) and :func:`yaml_comment` (a comment line whose text is
  a one-line, double-quoted YAML scalar: a newline in a file name cannot start a key);
- XML: :func:`xml_text` (characters XML 1.0 cannot hold written as visible escapes) and
  :func:`xml_document` (ElementTree's escaping, plus carriage returns kept as ``&#13;``);
- HTML: :func:`html_text` (``html.escape`` after the same clean-up as XML).
"""

from __future__ import annotations

import html
import keyword
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Collection
from typing import Any

import yaml

__all__ = [
    "html_text",
    "py_docstring",
    "py_identifier",
    "py_literal",
    "py_string_body",
    "spec_name",
    "unique",
    "xml_document",
    "xml_text",
    "yaml_comment",
    "yaml_document",
    "yaml_scalar",
]  # fmt: skip


# -- names ----------------------------------------------------------------------------------------------


def unique(name: str, taken: Collection[str], max_len: int | None = None) -> str:
    """``name``, or ``name_2``, ``name_3``... (cut to ``max_len``) whichever ``taken`` lacks."""
    candidate, n = name[:max_len] if max_len else name, 1
    while candidate in taken:
        n += 1
        suffix = f"_{n}"
        candidate = (name[: max_len - len(suffix)] if max_len else name) + suffix
    return candidate


def py_identifier(
    name: str, taken: Collection[str] = (), reserved: Collection[str] = (), prefix: str = "layer_"
) -> str:
    """A Python identifier for ``name``, unique among ``taken``.

    Every character outside ``[A-Za-z0-9_]`` becomes ``_`` (ASCII only: Python folds some non-ASCII
    letters together, NFKC); a name that starts with a digit or ``_`` (``__x`` would be name-mangled
    inside a class body), is empty, is a keyword or is in ``reserved`` gets ``prefix`` in front. Two
    names that clean to one identifier get ``_2``, ``_3``... (``x.y`` and ``x_y``: ``x_y``, ``x_y_2``).
    """
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not ident or not (ident[0].isalpha()) or keyword.iskeyword(ident) or keyword.issoftkeyword(ident):
        ident = prefix + ident
    elif ident in reserved:
        ident += "_"
    ident = unique(ident, [*taken, *reserved])
    assert ident.isidentifier() and not keyword.iskeyword(ident) and not ident.startswith("_"), ident
    return ident


def spec_name(name: str, taken: Collection[str] = ()) -> str:
    """A layer or model name the spec accepts (``[A-Za-z0-9_-]``, 1 to 64 characters) for ``name``,
    unique among ``taken``: names that clean to one (``x.y``, ``x_y``) get ``_2``, ``_3``..."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", name) or "layer"
    return unique(clean, taken, max_len=64)


# -- Python ------------------------------------------------------------------------------------------------


def py_literal(value: Any) -> str:
    """Python source that evaluates to ``value`` (None, bool, int, float, str, bytes, and lists, tuples and
    dicts of them); ``float("inf")``/``float("nan")`` where ``repr`` is not a literal."""
    if isinstance(value, float) and not math.isfinite(value):
        return f'float("{value}")'
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(py_literal, value)) + "]"
    if isinstance(value, tuple):
        return "(" + "".join(f"{py_literal(v)}, " for v in value).rstrip(" ") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Python literal for a {type(value).__name__}")


def _escape_char(c: str) -> str:
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def py_string_body(text: str, *, newlines: bool = False) -> str:
    """``text`` as the inside of a (non-raw) Python string literal, ``"..."`` or ``\"\"\"...\"\"\"``: backslashes
    and double quotes escaped, every unprintable character (control characters, NUL, lone surrogates of a
    non-UTF-8 file name) written as ``\\xNN``/``\\uNNNN``. ``newlines``: keep ``\\n`` as a line break (inside
    triple quotes); otherwise it is ``\\n``, so the result is one line."""
    out = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n" and newlines:
            out.append(c)
        elif c == "\n":
            out.append("\\n")
        elif not c.isprintable() and c != " ":
            out.append(_escape_char(c))
        else:
            out.append(c)
    return "".join(out)


def py_docstring(text: str, indent: str = "") -> str:
    """A triple-quoted docstring whose value is ``text`` (its line breaks kept, everything else escaped);
    lines after the first get ``indent``."""
    body = py_string_body(text, newlines=True).replace("\n", "\n" + indent)
    return f'"""{body}"""'


# -- YAML ----------------------------------------------------------------------------------------------------


def yaml_document(data: Any, *, comment: str | None = None, width: int = 120) -> str:
    """``data`` as YAML through PyYAML's safe dumper (keys in their order), after an optional comment line."""
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=width, allow_unicode=True)
    return (yaml_comment(comment) if comment is not None else "") + body


def yaml_comment(text: str) -> str:
    """``# text`` as one YAML comment line: a line break or unprintable character in ``text`` is written as an
    escape, so the comment stays one line. Quote a value inside it with :func:`yaml_scalar`."""
    return "# " + "".join(c if c.isprintable() or c == " " else _escape_char(c) for c in text) + "\n"


def yaml_scalar(value: str) -> str:
    """``value`` as a one-line, double-quoted YAML scalar (``yaml.safe_load`` of it gives ``value`` back)."""
    text = yaml.safe_dump(value, default_style='"', width=math.inf, allow_unicode=True)  # type: ignore[arg-type]
    return text.removesuffix("\n").removesuffix("\n...")


# -- XML and HTML -------------------------------------------------------------------------------------------

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot hold at all, even as character references (control characters, NUL, lone
surrogates, U+FFFE/U+FFFF)."""


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 cannot hold written as a visible ``\\xNN``/``\\uNNNN`` escape
    (a backslash stays as it is; ``&``, ``<`` and quotes are escaped by the serializer)."""
    return _NOT_XML.sub(lambda m: _escape_char(m.group()), text)


def xml_document(root: ET.Element) -> str:
    """The XML document of ``root`` (indented, with its declaration). Every text and attribute value must have
    been through :func:`xml_text`; carriage returns in text are written ``&#13;`` so a parser keeps them."""
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode").replace("\r", "&#13;")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"


def html_text(text: str) -> str:
    """``text`` for HTML element text or a quoted attribute: the XML clean-up, then ``html.escape``."""
    return html.escape(xml_text(text), quote=True)
