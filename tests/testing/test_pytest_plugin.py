"""The pytest plugin: ``pytest --rnnspec-specs DIR`` collects one equivalence test per spec and backend pair, a
failure prints rnnspec's report, and the ``rnnspec_equivalent`` fixture serves a suite's own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.parity import backend_or_skip

SMALL = (
    "rnnspec: 1\nname: small-{cell}\ninput: {{features: 3}}\nrecurrent: [{{cell: {cell}, units: 2}}]\n"
    "head: {{units: 1}}\n"
)


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A fresh pytest in ``folder`` with the plugin loaded by name (entry points off: the result does not depend
    on what else is installed)."""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    command = [sys.executable, "-m", "pytest", "-p", "rnnspec.testing.pytest_plugin", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def test_one_test_per_spec_and_pair_is_collected_and_run(tmp_path: Path):
    backend_or_skip("torch")
    specs = tmp_path / "specs"
    specs.mkdir()
    for cell in ("gru", "lstm"):
        (specs / f"{cell}.yaml").write_text(SMALL.format(cell=cell))
    (specs / "notes.txt").write_text("not a spec")
    listed = _pytest(tmp_path, "--collect-only", "-q", "--rnnspec-specs", "specs", "--rnnspec-pairs", "torch:numpy")
    names = [line for line in listed.stdout.splitlines() if "::" in line]
    expected = ["::rnnspec-specs::specs/gru.yaml[torch-numpy]", "::rnnspec-specs::specs/lstm.yaml[torch-numpy]"]
    assert names == expected, listed.stdout  # the spec's folder is in the id
    run = _pytest(tmp_path, "-q", "--rnnspec-specs", "specs", "--rnnspec-pairs", "torch:numpy")
    assert run.returncode == 0 and "2 passed" in run.stdout, run.stdout + run.stderr


def test_a_bad_spec_fails_with_its_error_and_bad_pairs_are_refused(tmp_path: Path):
    backend_or_skip("torch")
    (tmp_path / "broken.yaml").write_text("rnnspec: 1\nname: broken\ninput: {features: 3}\nrecurrent: []\n")
    run = _pytest(tmp_path, "-q", "--rnnspec-specs", "broken.yaml", "--rnnspec-pairs", "torch:numpy")
    assert run.returncode == 1 and "1 failed" in run.stdout
    assert "broken.yaml" in run.stdout and "recurrent" in run.stdout and "Traceback" not in run.stdout
    bad = _pytest(tmp_path, "-q", "--rnnspec-specs", "broken.yaml", "--rnnspec-pairs", "torch:tensorflow")
    assert bad.returncode == 4 and "is not two different backends" in bad.stderr


def test_the_fixture_in_a_users_own_suite(tmp_path: Path):
    backend_or_skip("torch")
    (tmp_path / "spec.yaml").write_text(SMALL.format(cell="simple_rnn"))
    (tmp_path / "test_port.py").write_text(
        "import torch\n"
        "from torch import nn\n\n"
        "class Port(nn.Module):\n"
        "    def __init__(self, transposed=False):\n"
        "        super().__init__()\n"
        "        self.rnn, self.fc, self.transposed = nn.RNN(3, 2, batch_first=True), nn.Linear(2, 1), transposed\n"
        "    def forward(self, x):\n"
        "        r, h = self.rnn, x.new_zeros(len(x), 2)\n"
        "        w = r.weight_hh_l0 if self.transposed else r.weight_hh_l0.T\n"
        "        for t in range(x.shape[1]):\n"
        "            h = torch.tanh(x[:, t] @ r.weight_ih_l0.T + r.bias_ih_l0 + h @ w + r.bias_hh_l0)\n"
        "        return self.fc(h)\n\n"
        "def test_port(rnnspec_equivalent):\n"
        "    rnnspec_equivalent('torch', Port(), 'spec.yaml')\n\n"
        "def test_mistake(rnnspec_equivalent):\n"
        "    rnnspec_equivalent('torch', Port(transposed=True), 'spec.yaml')\n"
    )
    run = _pytest(tmp_path, "-q", "test_port.py")
    assert "1 passed" in run.stdout and "1 failed" in run.stdout, run.stdout + run.stderr
    assert "recurrent_kernel (PyTorch's weight_hh) were used transposed" in run.stdout  # names the mistake
    assert "def assert_equivalent" not in run.stdout  # its frame is hidden: the report, not its source


def test_the_spec_tests_are_collected_in_the_collection_phase(tmp_path: Path):
    """Counted with the suite's own tests, and selected or deselected by -k like them."""
    specs = tmp_path / "specs"
    specs.mkdir()
    for cell in ("gru", "lstm"):
        (specs / f"{cell}.yaml").write_text(SMALL.format(cell=cell))
    (tmp_path / "test_own.py").write_text("def test_own():\n    pass\n")
    options = ("--rnnspec-specs", "specs", "--rnnspec-pairs", "torch:numpy")
    listed = _pytest(tmp_path, "--collect-only", *options)
    assert "collected 3 items" in listed.stdout and "3 tests collected" in listed.stdout, listed.stdout
    assert "3 tests collected" in _pytest(tmp_path, "--collect-only", "-q", *options).stdout
    none = _pytest(tmp_path, "-q", "-k", "nomatch", *options)
    assert "3 deselected" in none.stdout and "-" not in none.stdout.split("deselected")[0].split()[-1], none.stdout
    some = _pytest(tmp_path, "--collect-only", "-q", "-k", "lstm", *options)
    assert "1/3 tests collected (2 deselected)" in some.stdout, some.stdout
