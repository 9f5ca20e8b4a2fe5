"""Static analysis of a spec: per-layer output shapes and parameter counts, for both conventions.

No framework is imported. The counts are the reference that every backend's build is checked
against. One formula covers every recurrent layer::

    directions × gates × (units × (inputs + units) + bias_vectors × units)

with ``bias_vectors`` = 1 in the keras convention for SimpleRNN and LSTM, 2 for a GRU with
``reset_after: true`` (1 with false), and 2 for every cell in the torch convention (``nn.RNN``,
``nn.LSTM`` and ``nn.GRU`` carry ``bias_ih`` and ``bias_hh``); 0 without ``use_bias``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rnnspec.lang.spec import GRUSpec, ModelSpec

__all__ = ["GATES", "KERAS_TYPES", "Analysis", "LayerRow", "analyze", "bias_vectors", "recurrent_params"]

Convention = Literal["keras", "torch"]
Shape = tuple[int | None, ...]

GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
KERAS_TYPES = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
BYTES_PER_PARAM = 4  # float32


@dataclass(frozen=True)
class LayerRow:
    """One row of the summary: a layer's name, Keras type, output shape and parameter count."""

    name: str
    type: str
    output_shape: Shape
    params: int
    kind: str
    """``embedding``, ``recurrent`` or ``head``."""
    input_dim: int
    """Features per step entering the layer (vocabulary size for the embedding)."""

    def shape_text(self) -> str:
        inner = ", ".join("None" if d is None else str(d) for d in self.output_shape)
        return f"({inner})" if len(self.output_shape) != 1 else f"({inner},)"


@dataclass(frozen=True)
class Analysis:
    """Rows and totals for one spec under one convention (what ``rnnspec summary`` prints)."""

    name: str
    convention: Convention
    layers: list[LayerRow] = field(default_factory=list)

    @property
    def total_params(self) -> int:
        return sum(row.params for row in self.layers)

    @property
    def trainable_params(self) -> int:
        return self.total_params

    @property
    def non_trainable_params(self) -> int:
        return 0

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
    if not layer.use_bias:
        return 0
    if convention == "torch":
        return 2
    if isinstance(layer, GRUSpec) and layer.reset_after:
        return 2
    return 1


def recurrent_params(layer, input_dim: int, convention: Convention) -> int:
    """Parameters of one recurrent layer (both directions when bidirectional)."""
    gates, units = GATES[layer.cell], layer.units
    per_direction = gates * (units * (input_dim + units) + bias_vectors(layer, convention) * units)
    return layer.directions * per_direction


def analyze(spec: ModelSpec, convention: Convention | None = None) -> Analysis:
    """Shapes and parameter counts of ``spec`` in ``convention`` (default: the spec's own).

    >>> from rnnspec import load_spec
    >>> analyze(load_spec("specs/imdb_lstm.yaml")).total_params
    328353
    """
    conv: Convention = convention or spec.convention
    if conv not in ("keras", "torch"):
        raise ValueError(f"unknown convention {conv!r}; expected 'keras' or 'torch'")
    names = iter(spec.layer_names())
    rows: list[LayerRow] = []
    time = spec.input.seq_len
    if spec.embedding is not None:
        vocab = spec.input.vocab_size or 0
        dim = spec.embedding.output_dim
        rows.append(LayerRow(next(names), "Embedding", (None, time, dim), vocab * dim, "embedding", vocab))
    else:
        dim = spec.input.features or 0
    per_step = True
    for layer in spec.recurrent:
        params = recurrent_params(layer, dim, conv)
        type_name = KERAS_TYPES[layer.cell]
        if layer.bidirectional:
            type_name = "Bidirectional"
        out = layer.output_units
        per_step = layer.return_sequences
        shape: Shape = (None, time, out) if per_step else (None, out)
        rows.append(LayerRow(next(names), type_name, shape, params, "recurrent", dim))
        dim = out
    if spec.head is not None:
        head = spec.head
        params = dim * head.units + (head.units if head.use_bias else 0)
        shape = (None, time, head.units) if per_step else (None, head.units)
        rows.append(LayerRow(next(names), "Dense", shape, params, "head", dim))
    return Analysis(name=spec.name, convention=conv, layers=rows)
