"""One writer for artifacts (rnnspec.util.staged_outputs): every command that writes files writes them as one unit,
never over one of its own inputs, under any name the OS allows."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from rnnspec.core.weights import save_weights_file
from rnnspec.util import staged_outputs, write_bytes_atomic
from tests.conftest import SPECS


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """A spec and its canonical weights, copied into a fresh folder."""
    spec = tmp_path / "model.yaml"
    shutil.copyfile(SPECS / "char_rnn_hello.yaml", spec)
    loaded = rnnspec.load_spec(spec)
    weights = tmp_path / "W.safetensors"
    save_weights_file(rnnspec.initial_weights(loaded, seed=3), weights, loaded)
    return spec, weights


def _listing(folder: Path) -> dict[bytes, bytes | str]:
    """Every entry of ``folder`` (bytes names) with its contents: what a command left behind."""
    out: dict[bytes, bytes | str] = {}
    for name in os.listdir(os.fsencode(folder)):
        path = Path(os.fsdecode(os.path.join(os.fsencode(folder), name)))
        out[name] = path.read_bytes() if path.is_file() and not path.is_symlink() else "other"
    return out


# -- outputs that are the command's own inputs ---------------------------------------------------------------


def test_export_onnx_over_its_own_spec_is_refused_and_the_spec_kept(pair, capsys) -> None:
    pytest.importorskip("onnx")
    spec, weights = pair
    before = _listing(spec.parent)
    assert main(["export", str(spec), "--weights", str(weights), "-f", "onnx", "-o", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "is also an input of this command" in err and "Traceback" not in err
    assert _listing(spec.parent) == before


def test_export_onnx_through_a_link_to_the_spec_is_refused(pair, capsys) -> None:
    pytest.importorskip("onnx")
    spec, weights = pair
    link = spec.with_name("link.onnx")
    link.symlink_to(spec.name)
    before = _listing(spec.parent)
    assert main(["export", str(spec), "--weights", str(weights), "-f", "onnx", "-o", str(link)]) == 1
    assert "is also an input" in capsys.readouterr().err
    assert _listing(spec.parent) == before


def test_export_torch_whose_weights_would_replace_the_weights_input_is_refused(pair, capsys) -> None:
    pytest.importorskip("torch")
    spec, weights = pair  # W.safetensors: export -o W.py writes W.py and W.safetensors
    before = _listing(spec.parent)
    assert main(["export", str(spec), "--weights", str(weights), "-f", "torch", "-o", str(spec.with_name("W.py"))]) == 1
    err = capsys.readouterr().err
    assert "W.safetensors" in err and "is also an input" in err
    assert _listing(spec.parent) == before  # no W.py beside the untouched weights, no temp file


def test_check_html_over_its_spec_is_refused_before_any_work(pair, capsys) -> None:
    spec, _ = pair
    before = _listing(spec.parent)
    assert main(["check", str(spec), "--html", str(spec)]) == 1
    assert "is also an input" in capsys.readouterr().err
    hard = spec.with_name("hard.xml")
    os.link(spec, hard)  # the spec under another name
    assert main(["check", str(spec), "--junit", str(hard)]) == 1
    assert "is also an input" in capsys.readouterr().err
    hard.unlink()
    assert _listing(spec.parent) == before


def test_check_plot_over_its_spec_is_refused_and_the_plot_is_written_with_the_pages_as_one_unit(
    pair, monkeypatch, capsys
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    import rnnspec.util

    spec, _ = pair
    before = _listing(spec.parent)
    assert main(["check", str(spec), "--plot", str(spec)]) == 1
    assert "is also an input" in capsys.readouterr().err
    assert _listing(spec.parent) == before

    def full_disk(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rnnspec.util, "write_text_atomic", full_disk)  # the JUnit page cannot be written
    plot, junit = spec.with_name("curves.png"), spec.with_name("report.xml")
    code = main(["check", str(spec), "--steps", "2", "--plot", str(plot), "--junit", str(junit)])
    assert code == 1 and "No space left on device" in capsys.readouterr().err
    assert _listing(spec.parent) == before  # no PNG without its report, no staged file left


def test_build_output_holding_the_weights_input_is_refused(pair, capsys) -> None:
    spec, weights = pair
    loaded = rnnspec.load_spec(spec)
    named = spec.with_name(f"{loaded.name}.weights.safetensors")  # the name build -o writes
    weights.rename(named)
    before = _listing(spec.parent)
    assert main(["build", str(spec), "-b", "numpy", "--weights", str(named), "-o", str(spec.parent)]) == 1
    assert "is also an input" in capsys.readouterr().err
    assert _listing(spec.parent) == before


# -- all files or none ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_weights_write_leaves_neither_file_of_a_torch_export(pair, monkeypatch, capsys, failure) -> None:
    pytest.importorskip("torch")
    import rnnspec_backends.torch.export as torch_export

    spec, weights = pair
    old_py, old_weights = spec.with_name("m.py"), spec.with_name("m.safetensors")
    old_py.write_text("# the previous export\n")
    old_weights.write_bytes(b"previous weights")
    before = _listing(spec.parent)

    def write(path, data):
        if str(path).endswith(".safetensors"):
            raise failure
        write_bytes_atomic(path, data)

    monkeypatch.setattr(torch_export, "write_bytes_atomic", write)
    code = main(["export", str(spec), "--weights", str(weights), "-f", "torch", "-o", str(old_py)])
    assert code == (130 if isinstance(failure, KeyboardInterrupt) else 1)
    assert "Traceback" not in capsys.readouterr().err
    assert _listing(spec.parent) == before  # the old pair whole, no new model.py, no temp or staging file


def test_a_fifo_at_the_weights_path_of_a_torch_export_is_refused_and_nothing_written(pair, capsys) -> None:
    pytest.importorskip("torch")
    spec, weights = pair
    os.mkfifo(spec.with_name("m.safetensors"))
    before = _listing(spec.parent)
    assert main(["export", str(spec), "--weights", str(weights), "-f", "torch", "-o", str(spec.with_name("m.py"))]) == 1
    assert "FIFO" in capsys.readouterr().err
    assert _listing(spec.parent) == before


def test_a_failed_rename_puts_back_the_files_already_replaced(tmp_path: Path, monkeypatch) -> None:
    """The commit renames file after file; when one fails, those already in place are undone."""
    from rnnspec.util import staged_outputs

    for name in ("a", "b"):
        (tmp_path / name).write_text(f"old {name}")
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith("/b"):
            raise OSError(errno.EIO, "Input/output error")
        real_replace(src, dst)

    with pytest.raises(OSError), staged_outputs() as out:
        write_bytes_atomic(out.stage(tmp_path / "a"), b"new a")
        write_bytes_atomic(out.stage(tmp_path / "b"), b"new b")
        monkeypatch.setattr(os, "replace", replace)
    monkeypatch.undo()
    assert _listing(tmp_path) == {b"a": b"old a", b"b": b"old b"}


def test_staged_outputs_refuse_a_target_that_is_an_input(tmp_path: Path) -> None:
    from rnnspec.util import OutputPathError, staged_outputs

    source = tmp_path / "in.csv"
    source.write_text("x\n")
    with pytest.raises(OutputPathError, match="is also an input"), staged_outputs([source]) as out:
        out.stage(tmp_path / "." / "in.csv")
    assert _listing(tmp_path) == {b"in.csv": b"x\n"}


# -- any name the OS allows ------------------------------------------------------------------------------------


def test_non_utf8_output_names_work_for_export_and_import(pair, capsys) -> None:
    pytest.importorskip("torch")
    spec, weights = pair
    folder = os.fsencode(spec.parent)
    target = Path(os.fsdecode(folder + b"/out\xff.py"))
    assert main(["export", str(spec), "--weights", str(weights), "-f", "torch", "-o", str(target)]) == 0
    printed = capsys.readouterr()
    assert "out\\xff.py" in printed.out and "Traceback" not in printed.err
    assert os.path.isfile(folder + b"/out\xff.py") and os.path.isfile(folder + b"/out\xff.safetensors")
    imported = Path(os.fsdecode(folder + b"/imp\xff"))
    assert main(["import", str(weights), "-o", str(imported)]) == 0
    printed = capsys.readouterr()
    assert "imp\\xff" in printed.out and "Traceback" not in printed.err
    assert sorted(os.listdir(folder + b"/imp\xff")) == [b"spec.yaml", b"weights.safetensors"]
    back = rnnspec.load_weights(imported / "weights.safetensors", spec=rnnspec.load_spec(imported / "spec.yaml"))
    original = rnnspec.load_weights(weights, spec=rnnspec.load_spec(spec))
    assert all(np.array_equal(back[k], original[k]) for k in original)


@pytest.mark.parametrize(("fmt", "module"), [("onnx", "onnxruntime"), ("keras", "keras")])
def test_non_utf8_output_names_work_for_the_other_export_formats(pair, capsys, fmt: str, module: str) -> None:
    """The proof reads the exported file back: by its bytes where a runtime takes UTF-8 paths only (onnxruntime)."""
    pytest.importorskip(module)
    spec, weights = pair
    name = os.fsencode(spec.parent) + b"/out\xff." + fmt.encode()
    assert main(["export", str(spec), "--weights", str(weights), "-f", fmt, "-o", os.fsdecode(name)]) == 0
    printed = capsys.readouterr()
    assert f"out\\xff.{fmt}" in printed.out and " ok" in printed.out and "Traceback" not in printed.err
    assert os.path.isfile(name)
    assert not [n for n in os.listdir(os.path.dirname(name)) if n.startswith(b".")]  # no staging folder left


def test_a_failed_spec_write_leaves_no_half_import(pair, monkeypatch, capsys) -> None:
    """import writes weights.safetensors and spec.yaml as one unit: the second failing leaves neither (nor -o)."""
    import rnnspec.runtime.importing as importing

    spec, weights = pair
    before = _listing(spec.parent)

    def fail(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(importing, "write_text_atomic", fail)
    assert main(["import", str(weights), "-o", str(spec.parent / "imported")]) == 1
    assert "No space left" in capsys.readouterr().err
    assert _listing(spec.parent) == before  # no weights.safetensors alone, no staging folder, no empty -o folder


_KILLED_MID_COMMIT = """
import os, signal, sys
from pathlib import Path
from rnnspec.util import staged_outputs, write_bytes_atomic

folder = Path(sys.argv[1])
real_replace, calls = os.replace, []

def replace(src, dst):
    if Path(dst).parent == folder:  # a rename into place (not a write into the staging folder)
        calls.append(dst)
    if len(calls) == 2:  # kill -9 between the first and the second rename into place
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)

os.replace = replace
with staged_outputs() as out:
    write_bytes_atomic(out.stage(folder / "model.py"), b"new model")
    write_bytes_atomic(out.stage(folder / "model.safetensors"), b"new weights")
    write_bytes_atomic(out.stage(folder / "notes.txt"), b"new notes")
"""


def test_kill_9_between_two_renames_is_undone_by_the_next_write_into_the_folder(tmp_path: Path) -> None:
    """A commit killed after its first rename left a new model.py beside the old weights (found by the re-attack);
    its journal lets the next write into that folder put the old model.py back before it removes the staging."""
    import subprocess
    import sys

    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "model.py").write_bytes(b"old model")
    (folder / "model.safetensors").write_bytes(b"old weights")
    done = subprocess.run([sys.executable, "-c", _KILLED_MID_COMMIT, str(folder)], capture_output=True, timeout=60)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    assert (folder / "model.py").read_bytes() == b"new model"  # the mix the kill left
    assert (folder / "model.safetensors").read_bytes() == b"old weights"
    with staged_outputs() as out:  # any later write into the folder
        write_bytes_atomic(out.stage(folder / "other.onnx"), b"other")
    assert _listing(folder) == {
        b"model.py": b"old model",
        b"model.safetensors": b"old weights",
        b"other.onnx": b"other",
    }


def test_a_finished_commit_leaves_nothing_to_undo(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "model.py").write_bytes(b"old model")
    with staged_outputs() as out:
        write_bytes_atomic(out.stage(folder / "model.py"), b"new model")
    with staged_outputs() as out:
        write_bytes_atomic(out.stage(folder / "other.onnx"), b"other")
    assert _listing(folder) == {b"model.py": b"new model", b"other.onnx": b"other"}


@pytest.mark.parametrize("name", ["e\x1b]0;TITLE\x07.onnx", "f\x1b[2J.onnx", "g\rhidden.onnx", "h\x9b31m.onnx"])
def test_control_characters_in_a_file_name_are_printed_escaped(pair, capsys, name: str) -> None:
    """A name with ESC, BEL, CR or a C1 code would retitle or clear the terminal, or print a name that is not the
    file's ("wrote f.onnx"); every message prints such characters as escapes (found by the re-attack)."""
    pytest.importorskip("onnx")
    spec, weights = pair
    target = spec.with_name(name)
    assert main(["export", str(spec), "--weights", str(weights), "-f", "onnx", "-o", str(target)]) == 0
    assert target.exists()
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert not any(c in printed for c in "\x1b\x07\r\x9b")
    assert repr(name[1])[1:-1] in printed or f"\\x{ord(name[1]):02x}" in printed


_KILLED_ACROSS_FOLDERS = """
import os, signal, sys
from pathlib import Path
from rnnspec.util import staged_outputs, write_bytes_atomic

a, b = Path(sys.argv[1]), Path(sys.argv[2])
real_replace, calls = os.replace, []

def replace(src, dst):
    if Path(dst).parent in (a, b):
        calls.append(dst)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)

os.replace = replace
with staged_outputs() as out:
    write_bytes_atomic(out.stage(a / "x.bin"), b"killed x")
    write_bytes_atomic(out.stage(b / "y.bin"), b"killed y")
"""


def test_a_commit_across_two_folders_is_undone_once(tmp_path: Path) -> None:
    """Each staging folder held a copy of the journal: undoing the commit from one folder left the other's copy,
    whose later replay could delete a file written since (found in review). The first undo removes every copy."""
    import subprocess
    import sys

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    done = subprocess.run([sys.executable, "-c", _KILLED_ACROSS_FOLDERS, str(a), str(b)], capture_output=True)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    with staged_outputs() as out:  # a write into a: the killed commit is undone (x.bin removed), then x.bin anew
        write_bytes_atomic(out.stage(a / "x.bin"), b"fresh x")
    assert not list(b.glob(".rnnspec-staging-*/.commit-journal"))  # b's copy of the journal went with it
    with staged_outputs() as out:
        write_bytes_atomic(out.stage(b / "z.bin"), b"z")
    assert _listing(a) == {b"x.bin": b"fresh x"}
    assert _listing(b) == {b"z.bin": b"z"}


def test_file_contents_keep_their_characters_only_messages_escape_them(tmp_path: Path) -> None:
    """DEL and C1 characters in a tokenizer's vocabulary or a prediction label are data: written as they are
    (printable escapes them in messages only; found in review: a tokenizer file no longer loaded)."""
    from rnnspec.util import printable, write_text_atomic

    text = "a\x7fb\x85c\rd\x1be"
    write_text_atomic(tmp_path / "t.json", text)
    assert (tmp_path / "t.json").read_bytes().decode("utf-8") == text
    assert printable(text) == "a\\x7fb\\x85c\\x0dd\\x1be"
