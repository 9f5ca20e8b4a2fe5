"""Reading weights from any file rnnspec writes, for ``rnnspec convert``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.core.registry import BUILTIN_BACKENDS, backend_for_artifact, backend_for_format
from rnnspec.core.weights import WEIGHTS_FORMAT, WeightsError, check_finite, check_weights, load_weights_file
from rnnspec.interop.formats import KERAS_SPEC_MEMBER
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.loader import load_spec, loads_spec
from rnnspec.lang.spec import ModelSpec
from rnnspec.runtime.backends import load_backend as load_with_threads

__all__ = ["read_any"]


def _foreign(source: Path) -> bool:
    """A model file rnnspec did not write: a plain .keras, a .h5, a torch.save file (read by the importer)."""
    name = source.name.lower()
    if name.endswith((".h5", ".hdf5", ".pt", ".pth")):
        return True
    if name.endswith(".keras"):
        import zipfile

        try:
            with zipfile.ZipFile(source) as archive:
                return KERAS_SPEC_MEMBER not in archive.namelist()
        except zipfile.BadZipFile:
            return False
    return False


def read_any(
    source: Path,
    spec_path: Path | None,
    load_backend: Callable[[str], Any] = load_with_threads,
    *,
    allow_nonfinite: bool = False,
) -> tuple[ModelSpec, dict[str, np.ndarray]]:
    """The spec and canonical weights held by ``source`` (canonical weights, torch artifact or .keras).

    ``load_backend``: how the backend of an artifact is loaded (default: with its thread count)."""
    if not source.exists():
        raise RnnspecError(f"{source}: no such file")
    if _foreign(source):
        from rnnspec.runtime.importing import import_model

        return import_model(source, spec_path, allow_nonfinite=allow_nonfinite)
    override = load_spec(spec_path) if spec_path is not None else None
    artifact_of = backend_for_artifact(str(source))
    if artifact_of is not None:
        from rnnspec.runtime.models import get_weights, spec_of

        model = load_backend(artifact_of).load_artifact(source)
        spec, weights = spec_of(model), get_weights(model)
    else:
        weights, metadata = load_weights_file(source, allow_nonfinite=allow_nonfinite)
        fmt = metadata.get("format")
        owner = backend_for_format(fmt)
        if fmt != WEIGHTS_FORMAT and owner is None:
            artifacts = " or ".join(
                f"a {name} artifact ({entry.artifact_format})"
                for name, entry in BUILTIN_BACKENDS.items()
                if entry.artifact_format
            )
            raise WeightsError(
                f"{source}: not a file written by rnnspec (format {fmt!r}); expected canonical weights "
                f"({WEIGHTS_FORMAT}) or {artifacts}"
            )
        if owner is not None:
            from rnnspec.runtime.models import get_weights

            weights = get_weights(load_backend(owner).load_artifact(source))
        if override is not None:
            spec = override
        elif "spec" in metadata:
            spec = loads_spec(metadata["spec"], file=f"{source} (embedded spec; or pass one with --spec)", fmt="json")
        else:
            raise WeightsError(f"{source}: the file carries no spec; pass it with --spec SPEC")
    if override is not None:
        spec = override
    if not allow_nonfinite:  # an artifact's weights too (a weights file was checked as it was read)
        check_finite(weights, str(source))
    check_weights(spec, weights)
    return spec, weights
