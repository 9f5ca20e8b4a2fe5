"""Reports people read and CI systems parse: one self-contained HTML page, and JUnit XML.

The page needs no network: its style is inline, its charts are inline SVG drawn here (the loss curves
of a training-parity run with their noise floor; each weight's gradient difference against its
tolerance, on a log scale). Both render a :class:`Verdict`, which either kind of check becomes.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from rnnspec.core.emit import html_text, xml_document, xml_text

__all__ = ["Verdict", "from_check_report", "from_equivalence", "html_page", "junit_xml"]


@dataclass
class Verdict:
    """What a report shows: a title, rows ``(check, value, tolerance, passed)``, notes, and the charts' data."""

    title: str
    passed: bool
    rows: list[tuple[str, str, str, bool]]
    notes: list[str] = field(default_factory=list)
    cause: str | None = None
    curves: dict[str, list[float]] = field(default_factory=dict)
    bars: list[tuple[str, float, float]] = field(default_factory=list)
    """``(weight, relative gradient difference, tolerance)`` for the gradient chart."""


def from_check_report(report: Any) -> Verdict:
    """``rnnspec check SPEC``'s report (counts, forward and training parity)."""
    rows = [(r.check, r.value, r.tolerance, r.passed) for r in report.rows]
    return Verdict(f"rnnspec check: {report.spec}", report.passed, rows, list(report.notes), curves=dict(report.curves))


def from_equivalence(report: Any) -> Verdict:
    """``rnnspec check SPEC --model A --model B``'s report (:class:`rnnspec.testing.Report`)."""
    rows = []
    for r in report.rows:
        value = f"{r.diff:.2e}" + (f" at {r.where}" if r.where and not r.within else "")
        value += " (warning: does not fail the check)" if not r.within and r.warning else ""
        rows.append((r.what, value + (f"; {r.note}" if r.note else ""), f"{r.tolerance:.0e}", r.passed))
    rows += list(report.training)
    if report.error:
        rows.insert(0, ("weights into both models", report.error, "", False))
    notes = [f"first: {report.first}", f"second: {report.second}"]
    bars = [
        (r.what.removeprefix("gradient "), r.diff, r.tolerance) for r in report.rows if r.what.startswith("gradient")
    ]
    notes += report.notes + [f"warning: {warning}" for warning in report.warnings]
    return Verdict(f"rnnspec check: {report.spec} (two models)", report.passed, rows, notes, report.cause,
                   curves=dict(report.curves), bars=bars)  # fmt: skip


# -- HTML -------------------------------------------------------------------------------------------------------

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #1b1b1b; }
h1 { font-size: 1.4em; } .verdict { font-size: 1.2em; font-weight: 600; padding: .4em .8em; display: inline-block; }
.pass { background: #d8f3dc; color: #1b4332; } .fail { background: #ffd6d6; color: #7a0000; }
table { border-collapse: collapse; width: 100%; margin: 1em 0; } th, td { text-align: left; padding: .3em .6em; }
tr:nth-child(even) { background: #f4f4f4; } th { border-bottom: 2px solid #999; }
td.result { font-weight: 600; } .cause { border-left: 4px solid #b00; padding: .5em 1em; background: #fff4f4; }
figure { margin: 1.5em 0; } figcaption { color: #555; font-size: .9em; }
"""


def html_page(verdict: Verdict) -> str:
    """One self-contained HTML page (no script, no network)."""
    esc = html_text
    state = ("pass", "all checks passed") if verdict.passed else ("fail", "NOT passed")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(verdict.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{esc(verdict.title)}</h1>",
        f'<p class="verdict {state[0]}" id="verdict">{state[1]}</p>',
    ]
    if verdict.cause:
        parts.append(f'<p class="cause" id="cause"><strong>Most likely cause:</strong> {esc(verdict.cause)}</p>')
    parts.append('<table id="checks"><thead><tr><th>check</th><th>value</th><th>tolerance</th><th>result</th></tr>'
                 "</thead><tbody>")  # fmt: skip
    for check, value, tolerance, passed in verdict.rows:
        result = "pass" if passed else "FAIL"
        parts.append(f"<tr><td>{esc(check)}</td><td>{esc(value)}</td><td>{esc(tolerance)}</td>"
                     f'<td class="result {"pass" if passed else "fail"}">{result}</td></tr>')  # fmt: skip
    parts.append("</tbody></table>")
    parts += [f"<p class=note>{esc(note)}</p>" for note in verdict.notes]
    if verdict.curves:
        parts.append(
            _figure(
                _loss_chart(verdict.curves), "Loss per optimizer step of the training-parity run, one curve per model"
            )
        )
    if verdict.bars:
        parts.append(_figure(_gradient_chart(verdict.bars), "Gradient difference per weight, relative to the "
                             "gradient's largest element (log scale; the line is the tolerance)"))  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{html_text(caption)}</figcaption></figure>"


_W, _H, _PAD = 640, 300, 48
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def _scale(values: list[float], low: float | None = None) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    lo = min(finite) if low is None and finite else (low if low is not None else 0.0)
    hi = max(finite) if finite else 1.0
    return (lo, hi) if hi > lo else (lo - 1.0, hi + 1.0)


def _axes(y_low: str, y_high: str, x_label: str) -> list[str]:
    return [
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - 10}" y2="{_H - _PAD}" stroke="#333"/>',
        f'<line x1="{_PAD}" y1="10" x2="{_PAD}" y2="{_H - _PAD}" stroke="#333"/>',
        f'<text x="4" y="{_H - _PAD}" font-size="11">{html_text(y_low)}</text>',
        f'<text x="4" y="18" font-size="11">{html_text(y_high)}</text>',
        f'<text x="{_W // 2}" y="{_H - 12}" font-size="12" text-anchor="middle">{html_text(x_label)}</text>',
    ]


def _svg(body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html_text(label)}" '
            f'width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}">' + "".join(body) + "</svg>")  # fmt: skip


def _loss_chart(curves: dict[str, list[float]]) -> str:
    lo, hi = _scale([v for c in curves.values() for v in c])
    steps = max(len(c) for c in curves.values())
    body = _axes(f"{lo:.3g}", f"{hi:.3g}", "optimizer step")

    def point(i: int, v: float) -> str:
        x = _PAD + (_W - 10 - _PAD) * (i / max(steps - 1, 1))
        y = (_H - _PAD) - (_H - _PAD - 10) * ((v - lo) / (hi - lo))
        return f"{x:.1f},{y:.1f}"

    for k, (name, curve) in enumerate(curves.items()):
        color = _COLORS[k % len(_COLORS)]
        points = " ".join(point(i, v) for i, v in enumerate(curve) if math.isfinite(v))
        body.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
        body.append(f'<text x="{_W - 120}" y="{24 + 16 * k}" font-size="12" fill="{color}">{html_text(name)}</text>')
    return _svg(body, "loss curves")


_BOTTOM = 110
"""The gradient chart's bottom margin: room for the weights' names, written slanted so that none is cut."""


def _gradient_chart(bars: list[tuple[str, float, float]]) -> str:
    """One bar per weight (log scale) against the tolerance line; an exact 0 is no bar but a "0" on the axis (a
    log scale has no 0); one y label; the weights' names slanted under their bars."""
    floor = 1e-9
    logs = [math.log10(max(v, floor)) if math.isfinite(v) and v > 0 else None for _, v, _ in bars]
    tol = math.log10(max(bars[0][2], floor))
    known = [lg for lg in logs if lg is not None]
    lo, hi = math.floor(min([*known, tol]) - 0.5), math.ceil(max([*known, tol]) + 0.5)
    if any(not math.isfinite(v) for _, v, _ in bars):
        hi = max(hi, 1)
    height, left, base = _H + _BOTTOM - _PAD, _PAD + 16, _H - _PAD
    body = [
        f'<line x1="{left}" y1="{base}" x2="{_W - 10}" y2="{base}" stroke="#333"/>',
        f'<line x1="{left}" y1="10" x2="{left}" y2="{base}" stroke="#333"/>',
        f'<text x="14" y="{base / 2:.0f}" font-size="11" text-anchor="middle" transform="rotate(-90 14 '
        f'{base / 2:.0f})">{html_text(f"difference, 1e{lo} to 1e{hi} (log)")}</text>',
    ]
    width = (_W - 10 - left) / max(len(bars), 1)

    def y(v: float) -> float:
        return base - (base - 10) * ((v - lo) / (hi - lo))

    for k, ((name, value, tolerance), log) in enumerate(zip(bars, logs, strict=True)):
        x = left + k * width
        centre = x + width / 2
        color = "#2ca02c" if value <= tolerance else "#d62728"
        if log is None and math.isfinite(value):  # exactly 0: nothing to draw on a log scale
            body.append(f'<text x="{centre:.1f}" y="{base - 4}" font-size="10" text-anchor="middle" fill="{color}">'
                        f"0<title>{html_text(name)}: exactly 0</title></text>")  # fmt: skip
        else:
            top = y(log if log is not None else hi)
            body.append(f'<rect x="{x + 4:.1f}" y="{top:.1f}" width="{max(width - 8, 1):.1f}" '
                        f'height="{base - top:.1f}" fill="{color}"><title>{html_text(name)}: {value:.2e}</title>'
                        "</rect>")  # fmt: skip
        label = name if len(name) <= 28 else "…" + name[-27:]
        body.append(f'<text x="{centre:.1f}" y="{base + 12}" font-size="9" text-anchor="end" '
                    f'transform="rotate(-35 {centre:.1f} {base + 12})">{html_text(label)}</text>')  # fmt: skip
    body.append(f'<line x1="{left}" y1="{y(tol):.1f}" x2="{_W - 10}" y2="{y(tol):.1f}" stroke="#555" '
                'stroke-dasharray="6 4"/>')  # fmt: skip
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="gradient differences" '
            f'width="{_W}" height="{height}" viewBox="0 0 {_W} {height}">' + "".join(body) + "</svg>")  # fmt: skip


# -- JUnit XML --------------------------------------------------------------------------------------------------


def junit_xml(verdict: Verdict) -> str:
    """One ``<testsuite>`` with a ``<testcase>`` per row; a failing row carries a ``<failure>`` with its value.
    Every value goes through :func:`rnnspec.core.emit.xml_text` (a control character in a path stays visible)."""
    x = xml_text
    failures = sum(not passed for *_, passed in verdict.rows)
    suites = ET.Element("testsuites", name="rnnspec", tests=str(len(verdict.rows)), failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name=x(verdict.title), tests=str(len(verdict.rows)),
                          failures=str(failures), errors="0", skipped="0")  # fmt: skip
    for check, value, tolerance, passed in verdict.rows:
        case = ET.SubElement(suite, "testcase", classname="rnnspec.check", name=x(check))
        if not passed:
            failure = ET.SubElement(case, "failure", message=x(f"{value} (tolerance {tolerance})"))
            failure.text = x("\n".join(filter(None, [f"{check}: {value} (tolerance {tolerance})", verdict.cause])))
    if verdict.notes or verdict.cause:
        ET.SubElement(suite, "system-out").text = x("\n".join([*verdict.notes, *filter(None, [verdict.cause])]))
    return xml_document(suites)
