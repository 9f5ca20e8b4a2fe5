"""``check --html`` / ``--junit``: one self-contained page that a real browser renders, and JUnit XML."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from rnnspec.testing.pages import from_equivalence, html_page, junit_xml
from tests.parity import backend_or_skip

SPEC = "rnnspec: 1\nname: tiny\ninput: {features: 3}\nrecurrent: [{cell: simple_rnn, units: 3}]\nhead: {units: 2}\n"


@pytest.fixture(scope="module")
def failing() -> object:
    """The report of a hand-written module with a transposed recurrent kernel against rnnspec's torch build."""
    backend_or_skip("torch")
    from .test_equivalence import HandRNN

    spec = rnnspec.loads_spec(SPEC.replace("features: 3", "features: 5").replace("units: 3", "units: 5"))
    return rnnspec.testing.compare("torch", HandRNN("transposed"), spec)


def test_the_page_is_self_contained(failing):
    page = html_page(from_equivalence(failing))
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page.lower()
    assert " src=" not in page and " href=" not in page and "@import" not in page  # nothing fetched
    assert page.count("<svg") == 1 and "Most likely cause:</strong> the second model behaves as if" in page
    assert "recurrent_kernel (PyTorch&#x27;s weight_hh) were used transposed" in page


def test_junit_xml_has_one_case_per_row_and_the_failures(failing):
    root = ET.fromstring(junit_xml(from_equivalence(failing)))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(failing.rows) and int(suite.get("failures")) == sum(not r.passed for r in failing.rows)
    failed = [c for c in cases if c.find("failure") is not None]
    assert any("transposed" in (c.find("failure").text or "") for c in failed)


def test_check_writes_both_files_for_a_spec(tmp_path: Path, capsys):
    backend_or_skip("torch")
    backend_or_skip("keras")
    (tmp_path / "s.yaml").write_text(SPEC)
    page, xml = tmp_path / "report.html", tmp_path / "report.xml"
    code = main(["check", str(tmp_path / "s.yaml"), "--steps", "5", "--html", str(page), "--junit", str(xml)])
    assert code == 0 and "all checks passed" in page.read_text() and "<polyline" in page.read_text()
    assert ET.parse(xml).getroot().find("testsuite").get("failures") == "0"


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no headless Chromium here (Debian: apt-get install chromium); the page is checked without a browser")


def test_a_real_browser_renders_the_page(failing, tmp_path: Path):
    browser = _browser()
    page = tmp_path / "report.html"
    page.write_text(html_page(from_equivalence(failing)))
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,1400"]
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "NOT passed" in dom and "gradient recurrent_0/recurrent_kernel" in dom and "Most likely cause" in dom
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    inked = np.mean(np.any(pixels < 0.9, axis=-1))
    assert shot.stat().st_size > 10_000 and 0.02 < inked < 0.9  # text, table and chart drawn, not a blank page


def test_the_gradient_chart_has_one_y_label_whole_x_labels_and_no_bar_for_an_exact_zero():
    import re

    from rnnspec.testing.pages import _gradient_chart

    bars = [("embedding/embeddings", 3e-7, 1e-5), ("recurrent_0/forward/recurrent_kernel", 0.4, 1e-5),
            ("head/bias", 0.0, 1e-5)]  # fmt: skip
    svg = _gradient_chart(bars)
    height = int(re.search(r'height="(\d+)"', svg).group(1))
    assert svg.count("<rect") == 2 and ">0<title>head/bias: exactly 0</title>" in svg  # 0: no bar on a log scale
    texts = re.findall(r"<text[^>]*>([^<]*)", svg)
    assert [t for t in texts if "log" in t] == ["difference, 1e-8 to 1e1 (log)"]  # the one y label
    assert not any(t.startswith("1e") for t in texts)
    for match in re.finditer(r'<text x="([\d.]+)" y="([\d.]+)" font-size="9" text-anchor="end" '
                             r'transform="rotate\(-35[^"]*\)">([^<]*)<', svg):  # fmt: skip
        x, y, label = float(match.group(1)), float(match.group(2)), match.group(3)
        length = 5.5 * len(label)  # 9 px type: at most about 5.5 px a character
        assert x - length * 0.82 >= 0 and y + length * 0.58 <= height, label  # cos/sin 35°: inside the picture
    assert "…" in svg and "/forward/recurrent_kernel" in svg  # a long name keeps its end
