"""State dicts that are hostile or hold tensors that are not weights (issue 20): refused from the file's
budget and the tensors' kinds, one located error each, never a huge allocation or a traceback."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch
from rnnspec_backends.torch.io import read_state_dict

from rnnspec.lang.errors import RnnspecError


def _save(tmp_path: Path, tensor: torch.Tensor, name: str = "sd.pt") -> Path:
    path = tmp_path / name
    torch.save({"w": tensor}, path)
    return path


def test_a_stride_0_expand_is_refused_before_allocating(tmp_path: Path) -> None:
    path = _save(tmp_path, torch.zeros(1).expand(200_000, 200_000))
    assert path.stat().st_size < 8192
    with pytest.raises(RnnspecError, match=r"sd\.pt: tensor 'w' of shape \(200000, 200000\) needs 149\.0 GiB"):
        read_state_dict(path)


def test_a_compressed_member_is_refused(tmp_path: Path) -> None:
    plain = _save(tmp_path, torch.zeros(4 * 1024 * 1024), "plain.pt")  # 16 MiB of zeros
    path = tmp_path / "packed.pt"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    assert path.stat().st_size < 200_000
    with pytest.raises(RnnspecError, match=r"packed\.pt: member .* is compressed"):
        read_state_dict(path)


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: torch.ones(3, dtype=torch.complex64), "complex"),
        (lambda: torch.ones(3, dtype=torch.int64), "int64"),
        (lambda: torch.ones(3, dtype=torch.bool), "bool"),
        (lambda: torch.eye(3).to_sparse(), "sparse"),
        (lambda: torch.quantize_per_tensor(torch.ones(3), 0.1, 0, torch.qint8), "quantized"),
        (lambda: torch.nested.nested_tensor([torch.ones(2), torch.ones(3)]), "nested"),
    ],
    ids=["complex", "int64", "bool", "sparse", "quantized", "nested"],
)
def test_tensors_that_are_not_dense_real_floats_are_refused(make, kind: str, tmp_path: Path) -> None:
    path = _save(tmp_path, make())
    with pytest.raises(RnnspecError, match=rf"sd\.pt: .*{kind}") as info:
        read_state_dict(path)
    assert len(str(info.value).splitlines()) == 1


def test_float_tensors_still_read(tmp_path: Path) -> None:
    path = _save(tmp_path, torch.arange(6, dtype=torch.float64).reshape(2, 3))
    ((key, value),) = read_state_dict(path)
    assert key == "w" and value.dtype.name == "float32" and value.tolist() == [[0, 1, 2], [3, 4, 5]]
