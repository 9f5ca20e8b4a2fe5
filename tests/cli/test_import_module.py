"""``rnnspec import model.pt --spec S --module FILE.py:CLASS [--args JSON]``: a state dict proven against the user's
own module, whose forward rnnspec runs on the proof's hard inputs.

Six small hand-written modules of the kinds published PyTorch code has (issue 21): a correct one passes; a
``log_softmax`` head the spec lacks, a bidirectional concat in reversed order, packed sequences padded with id 1 and a
random initial state each fail, writing nothing, and the output names the rows and positions that differ. The numbers
the failures are checked against come from the module itself (torch), never from rnnspec. The user's file's own
failures (syntax, imports, class name, constructor, forward, state-dict mismatch) are one-paragraph errors.

Most proofs here compare the module with rnnspec's numpy and torch builds only (the ``two_backends`` fixture): the
Keras build adds seconds and nothing the module's forward could show; the correct module runs against all three.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from rnnspec.interop.proof import TOLERANCE, hard_inputs

torch = pytest.importorskip("torch")

MODULES = '''
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


class Tagger(nn.Module):
    """Embedding -> bidirectional LSTM -> Linear on the two final states (the spec's meaning)."""

    def __init__(self, vocab=20, dim=6, hidden=5, classes=3):
        super().__init__()
        self.hidden = hidden
        self.emb = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, classes)

    def encode(self, x, h0=None):
        _, (h, _) = self.lstm(self.emb(x), h0)
        return h[0], h[1]

    def forward(self, x):
        forward, backward = self.encode(x)
        return self.fc(torch.cat([forward, backward], dim=-1))


class LogSoftmaxTagger(Tagger):
    def forward(self, x):
        return torch.log_softmax(super().forward(x), dim=-1)


class ReversedTagger(Tagger):
    def forward(self, x):
        forward, backward = self.encode(x)
        return self.fc(torch.cat([backward, forward], dim=-1))


class RandomStateTagger(Tagger):
    def forward(self, x):
        shape = (2, len(x), self.hidden)
        forward, backward = self.encode(x, (torch.randn(shape), torch.randn(shape)))
        return self.fc(torch.cat([forward, backward], dim=-1))


class PackedTagger(nn.Module):
    """torchtext's habit: <pad> is id 1, the lengths counted from it, the sequences packed."""

    def __init__(self, vocab=20, dim=6, hidden=5, classes=3):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim, padding_idx=1)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        lengths = (x != 1).sum(dim=1).clamp(min=1)
        packed = pack_padded_sequence(self.emb(x), lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return self.fc(h[-1])
'''

SPEC = """
rnnspec: 1.2
name: tagger
convention: torch
input: {vocab_size: 20}
embedding: {output_dim: 6}
recurrent: [{cell: lstm, units: 5, bidirectional: true}]
head: {units: 3}
"""
MASKED_SPEC = """
rnnspec: 1.2
name: packed
convention: torch
input: {vocab_size: 20}
embedding: {output_dim: 6, mask_zero: true}
recurrent: [{cell: lstm, units: 5}]
head: {units: 3}
"""


@pytest.fixture
def two_backends(monkeypatch):
    """The proof against rnnspec's numpy and torch builds only (see the module's docstring)."""
    import rnnspec.core.registry as registry

    monkeypatch.setattr(registry, "compared_backends", lambda: ["numpy", "torch"])


def _saved(tmp_path: Path, cls: str, spec: str = SPEC, **kwargs) -> tuple[Path, Path, Path, object]:
    """The modules' file, the state dict of ``cls(**kwargs)`` (seeded), the spec, and the module itself."""
    source = tmp_path / "my_model.py"
    source.write_text(MODULES)
    torch.manual_seed(0)
    module = runpy.run_path(str(source))[cls](**kwargs).eval()
    torch.save(module.state_dict(), tmp_path / "model.pt")
    (tmp_path / "spec.yaml").write_text(spec)
    return source, tmp_path / "model.pt", tmp_path / "spec.yaml", module


def _import(pt: Path, spec: Path, out: Path, *more: str) -> int:
    return main(["import", str(pt), "--spec", str(spec), "-o", str(out), *more])


def _module_outputs(module, spec: str) -> np.ndarray:
    """The module's own outputs on the proof's inputs, run by torch here."""
    x = hard_inputs(rnnspec.loads_spec(spec))
    with torch.no_grad():
        return module(torch.as_tensor(x)).numpy().astype(np.float64)


def _spec_outputs(spec: str, pt: Path) -> np.ndarray:
    """What the spec means with the state dict's weights: rnnspec's float64 reference."""
    from rnnspec.runtime.importing import import_model

    model_spec, weights = import_model(pt, rnnspec.loads_spec(spec))
    x = hard_inputs(model_spec)
    return np.asarray(rnnspec.predict(rnnspec.build(model_spec, "numpy", weights=weights), x), dtype=np.float64)


def test_the_correct_module_passes_and_is_written(tmp_path, capsys, monkeypatch):
    source, pt, spec, module = _saved(tmp_path, "Tagger")
    assert np.abs(_module_outputs(module, SPEC) - _spec_outputs(SPEC, pt)).max() <= TOLERANCE  # independently
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as where PYTHONDONTWRITEBYTECODE is unset
    assert _import(pt, spec, tmp_path / "out", "--module", f"{source}:Tagger") == 0
    assert not (tmp_path / "__pycache__").exists()  # running the user's file left nothing in their folder
    assert sys.dont_write_bytecode is False
    out = capsys.readouterr().out
    assert "your module Tagger's own forward" in out and "DIFFERENT" not in out
    for backend in ("numpy", "torch", "keras"):
        if backend == "keras":
            pytest.importorskip("keras")
        assert f"your module Tagger vs rnnspec {backend}" in out
    assert "cannot see your module's forward" not in out
    assert (tmp_path / "out" / "spec.yaml").exists() and (tmp_path / "out" / "weights.safetensors").exists()


def _fails(tmp_path: Path, capsys, cls: str, spec: str = SPEC) -> tuple[str, np.ndarray]:
    """Import ``cls``'s state dict with --module: it must fail and write nothing; the output and the module's own
    per-row differences from the spec's meaning."""
    source, pt, spec_path, module = _saved(tmp_path, cls, spec)
    out_dir = tmp_path / "out"
    assert _import(pt, spec_path, out_dir, "--module", f"{source}:{cls}") == 1
    out = capsys.readouterr().out
    assert not out_dir.exists()
    assert "proof failed: nothing was written" in out and "rnnspec.testing.assert_equivalent(module, 'numpy'" in out
    per_row = np.abs(_module_outputs(module, spec) - _spec_outputs(spec, pt)).reshape(8, -1).max(axis=1)
    return out, per_row


def _named_rows(out: str, per_row: np.ndarray) -> None:
    """The rows the output says differ are those where the module itself departs from the spec's meaning."""
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("differs on"))
    differing, _, agreeing = line.partition("; agrees on")
    for i, d in enumerate(per_row):
        assert (f"row {i} (" in differing) == (d > TOLERANCE), (i, d, line)
        assert (f"row {i} (" in agreeing) == (d <= TOLERANCE), (i, d, line)


def test_a_log_softmax_head_the_spec_lacks_fails_naming_where(tmp_path, capsys, two_backends):
    out, per_row = _fails(tmp_path, capsys, "LogSoftmaxTagger")
    assert (per_row > 0.01).all()  # log-probabilities against logits: every row
    _named_rows(out, per_row)
    worst = int(np.argmax(per_row))
    assert f"largest on row {worst} (" in out and "at output " in out


def test_a_log_softmax_head_in_the_spec_passes(tmp_path, capsys, two_backends):
    """The same module with ``head: {units: 3, activation: log_softmax}``: the spec now describes it."""
    spec = SPEC.replace("head: {units: 3}", "head: {units: 3, activation: log_softmax}")
    source, pt, spec_path, _ = _saved(tmp_path, "LogSoftmaxTagger", spec)
    assert _import(pt, spec_path, tmp_path / "out", "--module", f"{source}:LogSoftmaxTagger") == 0
    assert "DIFFERENT" not in capsys.readouterr().out
    assert "activation: log_softmax" in (tmp_path / "out" / "spec.yaml").read_text()


def test_a_bidirectional_concat_in_reversed_order_fails(tmp_path, capsys, two_backends):
    out, per_row = _fails(tmp_path, capsys, "ReversedTagger")
    _named_rows(out, per_row)
    assert "DIFFERENT" in out


def test_packed_sequences_padded_with_id_1_fail_on_the_padded_rows(tmp_path, capsys, two_backends):
    """The spec masks id 0 (Keras's mask_zero); the module packs by the count of ids that are not 1."""
    out, per_row = _fails(tmp_path, capsys, "PackedTagger", MASKED_SPEC)
    _named_rows(out, per_row)
    assert per_row[3] > TOLERANCE  # the fully padded row: zeros for the spec, 12 steps of token 0 for the module


def test_packed_sequences_with_padding_idx_1_agree_where_packing_is_exact(tmp_path, capsys, two_backends):
    """With ``padding_idx: 1`` the spec masks what the module pads (the proof pads with id 1); packing (lengths
    counted from the start, at least 1) is Keras's masking only where the padding is at the end: the post-padded
    and full rows agree, and the pre-padded rows (length 1 is one), the hole and the fully padded row are named."""
    spec = MASKED_SPEC.replace("mask_zero: true", "padding_idx: 1")  # the pad id masks as mask_zero masks 0
    out, per_row = _fails(tmp_path, capsys, "PackedTagger", spec)
    assert [i for i, d in enumerate(per_row) if d > 1e-5] == [0, 2, 3, 4]  # the module itself, against the spec
    _named_rows(out, per_row)
    assert "agrees on row 1 (post-padded)" in out


def test_a_random_initial_state_fails_as_not_deterministic(tmp_path, capsys, two_backends):
    out, _ = _fails(tmp_path, capsys, "RandomStateTagger")
    assert "your module RandomStateTagger, run twice" in out
    assert "RandomStateTagger's forward is not deterministic" in out and "random initial state" in out
    # its own floor is not measured (a random module's nudged run would raise every allowance): no row passes by it
    assert "x its noise floor" not in out


# -- the user's file's own failures: one paragraph each, never a traceback --------------------------------------------

BROKEN = {
    "syntax": ("class Tagger(:\n    pass\n", "Tagger", None, ["SyntaxError", "line 1"]),
    "import": ("import no_such_package_for_rnnspec\n", "Tagger", None, ["ModuleNotFoundError", "no_such_package"]),
    "class name": (MODULES, "Taggr", None, ["no class named 'Taggr'", "LogSoftmaxTagger", "Tagger"]),
    "constructor": (MODULES, "Tagger", '{"hiden": 8}', ["TypeError", "hiden", "--args"]),
    "forward": (
        MODULES + "\n\nclass Floats(Tagger):\n    def forward(self, x):\n        return self.fc(x.float())\n",
        "Floats",
        None,
        ["RuntimeError", "its forward failed", "line", "self.fc(x.float())", "int64 batch of shape (8, 12)"],
    ),
    "state dict": (MODULES, "Tagger", '{"hidden": 7}', ["does not fit", "shapes differ", "lstm.weight_ih_l0"]),
    "not a module": (MODULES + "\n\nclass Plain:\n    pass\n", "Plain", None, ["expected a torch.nn.Module"]),
    "args": (MODULES, "Tagger", "{hidden: 7}", ["--args", "is not JSON"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_errors_of_the_users_file_are_one_paragraph(tmp_path, capsys, case):
    text, cls, args, expected = BROKEN[case]
    _, pt, spec, _ = _saved(tmp_path, "Tagger")
    broken = tmp_path / "broken.py"
    broken.write_text(text)
    more = ["--module", f"{broken}:{cls}", *(["--args", args] if args is not None else [])]
    assert _import(pt, spec, tmp_path / "out", *more) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out and not (tmp_path / "out").exists()
    assert captured.err.startswith("error: ") and captured.err.strip().count("\n") == 0, captured.err
    for word in expected:
        assert word in captured.err, (word, captured.err)


def test_usage_errors(tmp_path, capsys):
    _, pt, spec, _ = _saved(tmp_path, "Tagger")
    assert _import(pt, spec, tmp_path / "out", "--args", "{}") == 2  # --args without --module
    assert _import(pt, spec, tmp_path / "out", "--module", "my_model.py") == 1  # no :CLASS
    assert "expected FILE.py:CLASS" in capsys.readouterr().err
    assert _import(pt, spec, tmp_path / "out", "--module", f"{tmp_path / 'absent.py'}:Tagger") == 1
    assert "no such file" in capsys.readouterr().err


def test_help_says_the_file_is_run(capsys):
    assert main(["import", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "--module" in text and "RUNS the code in FILE.py" in text and "rnnspec RUNS that Python file" in text


def test_a_neighbour_module_of_one_folder_is_not_reused_for_another(tmp_path):
    """Two users' folders each with their own ``helper_mod.py``: each --module file imports its own neighbour (the
    first one's is not left in sys.modules for the second to find), and the file's class still works."""
    import sys

    from rnnspec.runtime.usercode import load_class

    classes = []
    for value in ("first", "second"):
        folder = tmp_path / value
        folder.mkdir()
        (folder / "helper_mod.py").write_text(f"VALUE = {value!r}\n\ndef shout():\n    return VALUE.upper()\n")
        (folder / "net.py").write_text(
            "import helper_mod\n\nclass Net:\n    value = helper_mod.VALUE\n\n"
            "    def loud(self):\n        return helper_mod.shout()\n"
        )
        classes.append(load_class(folder / "net.py", "Net"))
        assert "helper_mod" not in sys.modules
    assert [cls.value for cls in classes] == ["first", "second"]
    assert [cls().loud() for cls in classes] == ["FIRST", "SECOND"]
