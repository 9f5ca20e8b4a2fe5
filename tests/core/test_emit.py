"""The emitters of generated text (:mod:`rnnspec.core.emit`): hostile values in, text that parses back out.

Each emitter is fed the same list of hostile names, and its output is parsed by the language's own parser
(``ast``/``compile`` for Python, ``yaml.safe_load``, ``xml.etree``, ``html.parser``); the value read back
must be the value put in (for XML and HTML: the value with the characters XML cannot hold made visible).
"""

from __future__ import annotations

import ast
import keyword
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
import yaml

from rnnspec.core.emit import (
    html_text,
    py_docstring,
    py_identifier,
    py_literal,
    py_string_body,
    spec_name,
    xml_document,
    xml_text,
    yaml_comment,
    yaml_document,
    yaml_scalar,
)

HOSTILE = [
    "plain",
    "",
    "'",
    '"',
    '"""',
    "'''",
    'a"""+str(__import__("os").system("touch PWNED"))+"""b',
    "\\",
    "ends with a backslash\\",
    "my\\user",
    "\\N{bullet}\\x00\\u1234",
    "line\nbreak",
    "m\nconvention: torch\n#.keras",
    "cr\rlf\r\n",
    "nul\x00byte",
    "".join(chr(c) for c in range(32)) + "\x7f\x85\u2028\u2029",
    "surrogate \udc80\udcff (a non-UTF-8 file name)",
    "non-ASCII: é ü 中文 🙂 \ufeff \ufffe \uffff",
    "__dunder",
    "__dunder__",
    "_private",
    "class",
    "match",
    "None",
    "1st",
    "x.y",
    "x_y",
    "x-y",
    "<script>alert(1)</script> & &amp; ]]> --> <!--",
    "key: value",
    "- item",
    "{a: 1}",
    "*alias &anchor !!python/object:os.system",
    "...",
    "---",
    " leading and trailing ",
    "# comment",
    "a" * 500,
]

_NOT_XML = {c for c in map(chr, range(0x20)) if c not in "\t\n\r"} | {"\ufffe", "\uffff"}


def _xml_ok(text: str) -> bool:
    return not any(c in _NOT_XML or "\ud800" <= c <= "\udfff" for c in text)


@pytest.mark.parametrize("value", HOSTILE)
def test_python_literals_and_strings_round_trip(value: str) -> None:
    assert ast.literal_eval(py_literal(value)) == value
    assert ast.literal_eval(py_literal([value, (value,), {value: 1.5}])) == [value, (value,), {value: 1.5}]
    for quote in ('"', '"""'):
        source = quote + py_string_body(value) + quote
        assert "\n" not in source
        assert ast.literal_eval(source) == value
    module = py_docstring(value) + "\nx = 1\n"
    tree = ast.parse(module)
    assert ast.get_docstring(tree, clean=False) == value
    assert [type(node).__name__ for node in tree.body] == ["Expr", "Assign"]  # nothing else ran or was defined
    compile(module, "<emitted>", "exec")


def test_python_literals_of_numbers() -> None:
    for value in (0.1, -0.0, 1e308, float("inf"), float("-inf"), 3, True, None, b"\x00'\""):
        assert eval(py_literal(value), {"__builtins__": {"float": float}}) == value
    assert eval(py_literal(float("nan")), {"__builtins__": {"float": float}}) != 0  # nan


def test_python_identifiers_are_valid_unique_and_never_mangled() -> None:
    taken: list[str] = []
    for value in HOSTILE:
        ident = py_identifier(value, taken, reserved={"forward", "training"})
        assert ident.isidentifier() and ident.isascii(), ident
        assert not keyword.iskeyword(ident) and not keyword.issoftkeyword(ident)
        assert not ident.startswith("_"), ident
        assert ident not in taken
        taken.append(ident)
        # a class attribute of that name is the name itself (no _Model__x mangling)
        namespace: dict[str, object] = {}
        exec(f"class Model:\n    def __init__(self):\n        self.{ident} = 1\n", namespace)
        assert ident in vars(namespace["Model"]())  # type: ignore[operator]
    assert py_identifier("x_y", ["x_y"]) == "x_y_2"
    assert py_identifier("forward", [], reserved={"forward"}) == "forward_"


def test_spec_names_are_valid_and_unique() -> None:
    from pydantic import TypeAdapter

    from rnnspec.lang.layers import Name

    check = TypeAdapter(Name)
    taken: list[str] = []
    for value in [*HOSTILE, "y" * 70, "y" * 70, "y" * 64]:
        name = spec_name(value, taken)
        assert check.validate_python(name) == name
        assert name not in taken
        taken.append(name)
    assert spec_name("x.y", ["x_y"]) == "x_y_2"


@pytest.mark.parametrize("value", HOSTILE)
def test_yaml_round_trips_and_comments_stay_one_line(value: str) -> None:
    data = {"name": value, value: [value, {"k": value}]}
    text = yaml_document(data, comment=f"from {yaml_scalar(value)} {value}")
    comment, _, body = text.partition("\n")
    assert comment.startswith("# ") and "\n" not in comment
    assert yaml.safe_load(text) == data
    assert yaml.safe_load(body) == data
    assert yaml.safe_load(yaml_scalar(value)) == value
    assert "\n" not in yaml_comment(value).removesuffix("\n")
    assert yaml.safe_load(yaml_comment(value) + "a: 1\n") == {"a": 1}


@pytest.mark.parametrize("value", HOSTILE)
def test_xml_parses_and_keeps_every_character_it_can(value: str) -> None:
    root = ET.Element("suite", name=xml_text(value))
    child = ET.SubElement(root, "case", message=xml_text(value))
    child.text = xml_text(value)
    parsed = ET.fromstring(xml_document(root).encode("utf-8"))
    expected = value if _xml_ok(value) else xml_text(value)
    assert parsed.get("name") == expected
    assert parsed.find("case").get("message") == expected
    assert (parsed.find("case").text or "") == expected
    assert _xml_ok(xml_text(value))


@pytest.mark.parametrize("value", HOSTILE)
def test_html_parses_back_to_the_value(value: str) -> None:
    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.data: list[str] = []
            self.attrs: list[tuple[str, str | None]] = []
            self.tags: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append(tag)
            self.attrs += attrs

        def handle_data(self, data: str) -> None:
            self.data.append(data)

    parser = Collect()
    parser.feed(f'<p title="{html_text(value)}">{html_text(value)}</p>')
    parser.close()
    expected = value if _xml_ok(value) else xml_text(value)
    assert parser.tags == ["p"]  # no element injected
    assert parser.attrs == [("title", expected)]
    assert "".join(parser.data) == expected
