"""Static analysis of a spec: per-layer output shapes and parameter counts, for both conventions.

No framework is imported. The counts are the reference that every backend's build is checked
against. Each layer kind declares its weights (:mod:`rnnspec.lang.layers`); a layer's count is the
sum of their sizes. For a recurrent layer that is::

    directions × gates × (units × (inputs + units) + bias_vectors × units)

with ``bias_vectors`` = 1 in the keras convention for SimpleRNN and LSTM, 2 for a GRU with
``reset_after: true`` (1 with false), and 2 for every cell in the torch convention (``nn.RNN``,
``nn.LSTM`` and ``nn.GRU`` carry ``bias_ih`` and ``bias_hh``); 0 without ``use_bias``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from rnnspec.lang.layers import RECURRENT_KINDS, Convention, LayerSpec
from rnnspec.lang.spec import ModelSpec

__all__ = ["GATES", "KERAS_TYPES", "Analysis", "LayerRow", "analyze", "bias_vectors", "recurrent_params"]

Shape = tuple[int | None, ...]

GATES = {tag: cls.gates for tag, cls in RECURRENT_KINDS.items()}
KERAS_TYPES = {tag: cls.keras_class for tag, cls in RECURRENT_KINDS.items()}
BYTES_PER_PARAM = 4  # float32


@dataclass(frozen=True)
class LayerRow:
    """One row of the summary: a layer's name, Keras type, output shape and parameter count."""

    name: str
    type: str
    output_shape: Shape
    params: int
    kind: str
    """The layer kind (``embedding``, ``lstm``, ``dense``, ``dropout``...)."""
    input_dim: int
    """Features per step entering the layer (vocabulary size for the embedding)."""
    layer: LayerSpec | None = None
    """The layer's spec."""
    non_trainable: int = 0
    """The part of ``params`` that training leaves unchanged (a frozen layer's weights: ``trainable: false``)."""

    def shape_text(self) -> str:
        inner = ", ".join("None" if d is None else str(d) for d in self.output_shape)
        return f"({inner})" if len(self.output_shape) != 1 else f"({inner},)"


@dataclass(frozen=True)
class Analysis:
    """Rows and totals for one spec under one convention (what ``rnnspec summary`` prints)."""

    name: str
    convention: Convention
    layers: tuple[LayerRow, ...] = field(default_factory=tuple)

    @property
    def total_params(self) -> int:
        return sum(row.params for row in self.layers)

    @property
    def trainable_params(self) -> int:
        return self.total_params - self.non_trainable_params

    @property
    def non_trainable_params(self) -> int:
        return sum(row.non_trainable for row in self.layers)

    def to_dict(self) -> dict[str, object]:
        """The ``rnnspec summary --json`` document."""
        return {
            "name": self.name,
            "convention": self.convention,
            "layers": [
                {"name": r.name, "type": r.type, "output_shape": list(r.output_shape), "params": r.params}
                for r in self.layers
            ],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
        }


def bias_vectors(layer, convention: Convention) -> int:
    """How many bias vectors of length ``gates × units`` one direction of ``layer`` has."""
    return layer.bias_vectors(convention)


def recurrent_params(layer, input_dim: int, convention: Convention) -> int:
    """Parameters of one recurrent layer (both directions when bidirectional)."""
    return layer.params(input_dim, convention)


_RECENT: OrderedDict[tuple[int, str], tuple[ModelSpec, Analysis]] = OrderedDict()
_RECENT_SIZE = 32


def analyze(spec: ModelSpec, convention: Convention | None = None) -> Analysis:
    """Shapes and parameter counts of ``spec`` in ``convention`` (default: the spec's own).

    The analysis of the last few specs is kept (a spec is frozen), so the steps of one build (weights
    drawn and checked, the backend's layers, the count check) share one.

    >>> from rnnspec import load_spec
    >>> analyze(load_spec("specs/imdb_lstm.yaml")).total_params
    328353
    """
    conv: Convention = convention or spec.convention
    if conv not in ("keras", "torch"):
        raise ValueError(f"unknown convention {conv!r}; expected 'keras' or 'torch'")
    key = (id(spec), conv)  # the spec is held beside its analysis, so its id is not reused while cached
    hit = _RECENT.get(key)
    if hit is not None and hit[0] is spec:
        _RECENT.move_to_end(key)
        return hit[1]
    analysis = _analyze(spec, conv)
    _RECENT[key] = (spec, analysis)
    if len(_RECENT) > _RECENT_SIZE:
        _RECENT.popitem(last=False)
    return analysis


def _analyze(spec: ModelSpec, conv: Convention) -> Analysis:
    rows: list[LayerRow] = []
    batch = spec.input.batch_size  # fixed only for stateful layers (Keras's batch_shape), as Keras shows it
    for s in spec.shapes():
        layer = s.layer
        shape: Shape = (batch, s.steps, s.features) if s.per_step else (batch, s.features)
        frozen = layer.non_trainable_params(s.inputs, conv)
        rows.append(
            LayerRow(
                s.name, layer.type_label(), shape, layer.params(s.inputs, conv), layer.kind, s.inputs, layer, frozen
            )
        )
    return Analysis(name=spec.name, convention=conv, layers=tuple(rows))
