"""Every layer kind of the spec language, each described once.

A kind is one pydantic class. Besides its spec fields and their validation it declares, in one
place, everything the rest of rnnspec derives from it:

- ``kind`` (its tag in the registries of the backends, exporters and importers);
- its class in each framework: ``keras_class`` (shown by the summary, suggested for near-misses),
  ``torch_class`` (the ``torch.nn`` module that computes it, where one does) and ``onnx_op`` (the
  one ONNX op that computes it, where one does);
- how it is written in a list and where: ``entry_key`` (``cell: lstm``, ``{dropout: R}``,
  ``{spatial_dropout: R}``, a Dense by its ``units``...), ``entry_form`` (that form in words, for
  messages) and ``placements`` (``recurrent`` list, ``head`` list, ``input`` side). The list
  entries' unions (:data:`RecurrentEntry`, :data:`HeadEntry`), the one entry sniffer
  (:func:`entry_kind`), the loader's messages and the JSON Schema derive from them;
- for a recurrent cell, ``gates``, ``gate_names`` and ``gate_orders``: the gate blocks in Keras's
  canonical order and each framework's order as a permutation of them (:meth:`RecurrentLayer.gate_index`);
- :meth:`weight_shapes`: canonical weight names (``kernel``, ``bias``...) and shapes for an input
  size and a bias convention. The parameter count is the sum of their sizes, so the analysis,
  the canonical weights and the counts of every backend share one formula;
- :meth:`initializers`: Keras's default initializer of each weight, by name (the runtime draws them);
- :meth:`output_features` and :meth:`output_per_step`: the output shape;
- :meth:`makes_mask` / :meth:`keeps_mask`: how Keras's mask flows through it (the model's
  ``masked`` and ``output_masked`` are folded from them).

A new kind is one class here, added to :data:`KINDS` (the one list; its order is also the order in
which :func:`entry_kind` tries the entry keys), plus one entry per backend, exporter and importer
registry (``tests/core/test_kind_completeness.py`` names any that is missing).
"""

from __future__ import annotations

import functools
import operator
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

__all__ = [
    "ACTIVATIONS",
    "CELL_TAGS",
    "FRAMEWORKS",
    "KERAS_CELL_NAMES",
    "KINDS",
    "LAYER_ACTIVATIONS",
    "LAYER_KINDS",
    "PLACEMENTS",
    "RECURRENT_ACTIVATIONS",
    "RECURRENT_KINDS",
    "ActivationSpec",
    "AveragePoolSpec",
    "BatchNormOptions",
    "BatchNormSpec",
    "Conv1DOptions",
    "Conv1DSpec",
    "Convention",
    "CrossFieldIssue",
    "CrossFieldIssues",
    "DenseSpec",
    "DropoutSpec",
    "EmbeddingSpec",
    "FlattenOptions",
    "FlattenSpec",
    "GRUSpec",
    "GlobalAveragePoolSpec",
    "GlobalMaxPoolSpec",
    "GlobalPoolOptions",
    "HeadEntry",
    "LSTMSpec",
    "LayerNormOptions",
    "LayerNormSpec",
    "LayerSpec",
    "MaskingOptions",
    "MaskingSpec",
    "MaxPoolSpec",
    "PoolOptions",
    "RecurrentEntry",
    "RecurrentLayer",
    "RepeatVectorSpec",
    "SimpleRNNSpec",
    "SpatialDropoutSpec",
    "entry_kind",
    "entry_kinds",
    "one_of",
    "pooled_steps",
    "same_padding",
    "trainable_field",
]

Convention = Literal["keras", "torch"]
"""How biases are parameterized (``keras``: one bias vector; ``torch``: two, as ``nn.RNN``...): the one definition."""
Shape = tuple[int, ...]
Placement = Literal["recurrent", "head", "input"]
PLACEMENTS: tuple[str, ...] = Placement.__args__  # type: ignore[attr-defined]
"""Where a kind may appear: in the ``recurrent`` list, in a ``head`` list, or on the input side (own section)."""
Framework = Literal["keras", "torch", "onnx"]
FRAMEWORKS: tuple[str, ...] = Framework.__args__  # type: ignore[attr-defined]

Activation = Literal[
    "linear",
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "relu",
    "elu",
    "selu",
    "gelu",
    "softplus",
    "softsign",
    "swish",
    "exponential",
]
ACTIVATIONS: tuple[str, ...] = Activation.__args__  # type: ignore[attr-defined]
"""Keras's element-wise activations that every backend implements (gelu: Keras's exact, erf form)."""
RecurrentActivation = Literal[
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "relu",
    "linear",
    "elu",
    "selu",
    "softplus",
    "softsign",
    "swish",
    "exponential",
]
DenseActivation = Literal[Activation, "softmax", "log_softmax"]
LayerActivation = Literal[Activation, "softmax", "log_softmax"]
LAYER_ACTIVATIONS: tuple[str, ...] = (*ACTIVATIONS, "softmax", "log_softmax")
"""What an ``activation`` entry (Keras's standalone ``Activation`` layer) applies: every element-wise activation,
and ``softmax`` / ``log_softmax`` over the last axis."""
MergeMode = Literal["concat", "sum", "mul", "ave"]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=64)]
PositiveInt = Annotated[int, Field(gt=0)]
Rate = Annotated[float, Field(ge=0.0, lt=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True, frozen=True)


class CrossFieldIssue(BaseModel):
    """One problem that relates several fields (raised inside :class:`CrossFieldIssues`)."""

    path: tuple[str | int, ...]
    message: str
    received: str | None = None
    expected: str | None = None
    fix: str | None = None


class CrossFieldIssues(ValueError):
    """Carries every cross-field problem of a spec out of pydantic's validation."""

    def __init__(self, issues: list[CrossFieldIssue]):
        self.issues = issues
        super().__init__("; ".join(f"{'.'.join(map(str, i.path))}: {i.message}" for i in issues))


class LayerSpec(_Strict):
    """What every layer kind declares (see the module docstring)."""

    kind: ClassVar[str]
    keras_class: ClassVar[str]
    torch_class: ClassVar[str | None] = None
    """The ``torch.nn`` class that computes the kind (``LSTM``, ``Linear``...); None where PyTorch has none."""
    onnx_op: ClassVar[str | None] = None
    """The ONNX op that computes the kind as one node (``LSTM``, ``Gather``...); None where it takes several or none."""
    default_name: ClassVar[str]
    """Default layer name; ``{n}`` is replaced by the layer's index among the layers of its kind."""
    entry_key: ClassVar[str | None] = None
    """The key that marks the kind in a list entry (``cell`` for a cell, whose value is the kind); None: own section."""
    entry_form: ClassVar[str] = ""
    """How an entry of the kind is written, for messages (``a Dense layer `{units: N, activation: ...}` ``)."""
    placements: ClassVar[frozenset[str]] = frozenset()
    """Where the kind may appear: ``recurrent`` and/or ``head`` lists, or ``input`` (a section of its own)."""
    initialisation_fields: ClassVar[frozenset[str]] = frozenset()
    """Fields that say only how the weights start (a pretrained table's file), not what the layer computes: two
    specs that differ in them describe the same model (an import or an artifact's config is compared without them)."""

    @classmethod
    def matches_entry(cls, value: dict[str, Any]) -> bool:
        """Whether a list entry (a mapping) is written as this kind: its ``entry_key`` is there."""
        return cls.entry_key is not None and cls.entry_key in value

    def entry_label(self) -> str:
        """This entry as a spec writes it, short (``{dropout: 0.5}``), for messages."""
        key = self.entry_key or self.kind
        return f"{{{key}: {getattr(self, key, '...')}}}"

    def weight_shapes(self, inputs: int, convention: Convention) -> dict[str, Shape]:
        """Canonical weight names (without the ``LAYER/`` prefix) and shapes for ``inputs`` features."""
        return {}

    def initializers(self) -> dict[str, str]:
        """Keras's default initializer of each weight leaf (see :mod:`rnnspec.core.weights`)."""
        return {}

    def params(self, inputs: int, convention: Convention) -> int:
        """Parameter count: the sum of the weights' sizes."""
        total = 0
        for shape in self.weight_shapes(inputs, convention).values():
            size = 1
            for d in shape:
                size *= d
            total += size
        return total

    def output_features(self, inputs: int) -> int:
        """Features per step (or per sample) of the output."""
        return inputs

    def output_width(self, inputs: int, steps: int | None, per_step: bool) -> int:
        """Features of the output given the input's features, steps (None: variable) and whether it has a time
        axis: :meth:`output_features` for every kind but one whose width depends on the steps (``flatten``). The
        one fold of the widths over a stack is :meth:`rnnspec.lang.spec.ModelSpec.shapes`."""
        return self.output_features(inputs)

    def output_per_step(self, per_step: bool) -> bool:
        """Whether the output still has a time axis, given whether the input has one."""
        return per_step

    def output_steps(self, steps: int | None) -> int | None:
        """The length of the output's time axis, given the input's (None: variable)."""
        return steps

    def output_activation(self, incoming: str) -> str:
        """The activation whose range the outputs are in, given the input's (``linear``: any number); a layer
        that passes values on unchanged at inference (dropout, masking) keeps the input's."""
        return incoming

    def makes_mask(self) -> bool:
        """Whether the layer creates Keras's mask (``mask_zero``, ``Masking``)."""
        return False

    def keeps_mask(self) -> bool:
        """Whether Keras's mask flows through to the next layer."""
        return True

    drops_mask_unread: ClassVar[bool] = False
    """Whether Keras's layer does not support masking: it drops a mask it receives (with a warning) and computes
    over the padded steps as data (pooling, Conv1D, Flatten). A spec may not put such a layer on a masked sequence."""
    reads_mask: ClassVar[bool] = False
    """Whether Keras's layer changes what it computes by the mask it receives (a recurrent layer skips masked steps;
    a global average and a BatchNormalization's training moments leave them out); the others pass it on unread."""
    batch_statistics: ClassVar[bool] = False
    """Whether the layer normalises by statistics of the whole batch while training (BatchNormalization): a
    data-parallel process, which sees its shard of the batch only, would compute other ones."""

    def type_label(self) -> str:
        """The ``Layer (type)`` of the summary."""
        return self.keras_class

    def is_trainable(self) -> bool:
        """Whether training may update the layer's weights: a kind with weights declares the field ``trainable``
        (:func:`trainable_field`), whose ``false`` freezes them as Keras's ``layer.trainable = False``."""
        return getattr(self, "trainable", True) is not False

    def leaf_trainable(self, leaf: str) -> bool:
        """Whether training updates the weight ``leaf`` (Keras's ``trainable_weights``; the others are its
        ``non_trainable_weights``, which the optimizer never sees). A kind with weights that are never trained
        (moving statistics) says so here."""
        return self.is_trainable()

    def non_trainable_params(self, inputs: int, convention: Convention) -> int:
        """The part of :meth:`params` that training leaves unchanged (Keras's "Non-trainable params")."""
        total = 0
        for leaf, shape in self.weight_shapes(inputs, convention).items():
            if not self.leaf_trainable(leaf):
                size = 1
                for d in shape:
                    size *= d
                total += size
        return total


def trainable_field() -> Any:
    """The ``trainable`` field every kind with weights declares (before its ``name``)."""
    return Field(
        True,
        description="False freezes the layer's weights: training leaves them unchanged and the optimizer keeps no "
        "state for them (Keras's `trainable=False`; PyTorch's `requires_grad_(False)`), as for a pretrained table.",
    )


# -- input-side layers ---------------------------------------------------------------------------


class MaskingOptions(_Strict):
    """The settings of a ``masking`` entry: Keras ``Masking``'s argument and default."""

    mask_value: Annotated[float, Field(allow_inf_nan=False)] = 0.0
    """The padding value (Keras's default 0.0)."""


class MaskingSpec(LayerSpec):
    """Keras ``Masking(mask_value)``: a step is masked where every feature equals the value; masked steps' features
    are set to 0. On the input it is made from ``input.mask_value``; in the ``recurrent`` list it is the entry
    ``{masking: {mask_value: V}}`` (``{masking: V}``, or ``{masking: {}}`` for 0.0), as published models put
    ``Masking(mask_value=0.)`` after an ``Embedding``. Keras's ``Masking.compute_mask`` ignores the mask it
    receives: its mask replaces the one before it (an embedding's ``mask_zero`` included)."""

    kind: ClassVar[str] = "masking"
    keras_class: ClassVar[str] = "Masking"
    default_name: ClassVar[str] = "masking_{n}"
    entry_key: ClassVar[str | None] = "masking"
    entry_form: ClassVar[str] = "`{masking: {mask_value: V}}`"
    placements: ClassVar[frozenset[str]] = frozenset({"input", "recurrent"})

    masking: MaskingOptions
    """The settings: `{mask_value: V}` (or `V`, or `{}` for Keras's default 0.0)."""
    name: Name | None = None
    """Layer name; default `masking_N` (N counts the model's Masking layers from 0; `input.mask_value`'s is
    `masking`)."""

    @field_validator("masking", mode="before", json_schema_input_type=Union[MaskingOptions, float, None])
    @classmethod
    def _value_or_default(cls, value: Any) -> Any:
        if value is None:
            return {}  # `- masking:` in YAML is null: Keras's default
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"mask_value": float(value)}
        return value

    @property
    def mask_value(self) -> float:
        return self.masking.mask_value

    def makes_mask(self) -> bool:
        return True

    def entry_label(self) -> str:
        return f"{{masking: {{mask_value: {self.mask_value}}}}}"


class EmbeddingSpec(LayerSpec):
    """A Keras ``Embedding(vocab_size, output_dim)`` on token-id input."""

    kind: ClassVar[str] = "embedding"
    keras_class: ClassVar[str] = "Embedding"
    torch_class: ClassVar[str | None] = "Embedding"
    onnx_op: ClassVar[str | None] = "Gather"
    default_name: ClassVar[str] = "embedding"
    placements: ClassVar[frozenset[str]] = frozenset({"input"})
    initialisation_fields: ClassVar[frozenset[str]] = frozenset({"weights", "vocabulary"})

    output_dim: PositiveInt
    """Size of each token's vector."""
    mask_zero: bool = False
    """Keras semantics: id 0 is padding; masked steps keep the recurrent state."""
    padding_idx: Annotated[int, Field(ge=0)] | None = None
    """The padding id, masked as `mask_zero` masks 0 (PyTorch's `nn.Embedding(padding_idx=...)` with packed
    sequences; torchtext's `<pad>` is 1): steps whose id is it are masked. `padding_idx: 0` is `mask_zero: true`."""
    weights: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    """A pretrained table that initialises the embedding when the model is built: an `.npy` array of shape
    (vocab_size, output_dim), or a GloVe text file (`.txt`: a word and its output_dim numbers a line) with
    `vocabulary`. A relative path starts from the spec file's folder."""
    vocabulary: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    """With a GloVe text file: the ids of the words, an rnnspec tokenizer file (`rnnspec train` writes one) or a
    JSON object {word: id} (Keras's `tokenizer.word_index`). Rows of words the file lacks keep their initial
    values."""
    trainable: bool = trainable_field()
    name: Name | None = None
    """Layer name; default `embedding`."""

    @model_validator(mode="after")
    def _table_and_vocabulary(self) -> EmbeddingSpec:
        issues = []
        if self.mask_zero and self.padding_idx not in (None, 0):
            issues.append(
                CrossFieldIssue(
                    path=("padding_idx",),
                    message=f"mask_zero masks id 0 and padding_idx masks id {self.padding_idx}: one padding id only",
                    received=f"mask_zero: true, padding_idx: {self.padding_idx}",
                    expected="padding_idx alone (its id is masked), or mask_zero alone (id 0)",
                    fix="remove `mask_zero: true`; `padding_idx` masks its own id",
                )
            )
        if self.weights is not None and not self.weights.lower().endswith((".npy", ".txt")):
            issues.append(
                CrossFieldIssue(
                    path=("weights",),
                    message="the pretrained table must be an .npy array or a GloVe text file (.txt)",
                    received=self.weights,
                    expected="a path ending in .npy (shape (vocab_size, output_dim)) or .txt (GloVe)",
                    fix="save the table with np.save('table.npy', matrix), or name the GloVe .txt file",
                )
            )
        glove = self.weights is not None and self.weights.lower().endswith(".txt")
        if glove and self.vocabulary is None:
            issues.append(
                CrossFieldIssue(
                    path=("vocabulary",),
                    message="a GloVe text file gives vectors by word; the spec needs the id of each word",
                    received=f"weights: {self.weights} without vocabulary",
                    expected="vocabulary: a tokenizer file (tokenizer.json) or a JSON object {word: id}",
                    fix="add `vocabulary: tokenizer.json` (the tokenizer `rnnspec train` writes for text data)",
                )
            )
        if self.vocabulary is not None and not glove:
            issues.append(
                CrossFieldIssue(
                    path=("vocabulary",),
                    message="vocabulary is read with a GloVe text file only (an .npy table is already by id)",
                    received=f"vocabulary: {self.vocabulary}, weights: {self.weights}",
                    expected="vocabulary with `weights: FILE.txt`",
                    fix="remove `vocabulary`, or point `weights` at the GloVe .txt file",
                )
            )
        if issues:
            raise CrossFieldIssues(issues)
        return self

    def makes_mask(self) -> bool:
        return self.mask_id is not None

    @property
    def mask_id(self) -> int | None:
        """The id whose steps are masked: 0 with ``mask_zero``, ``padding_idx`` when set, else None (no mask)."""
        return self.padding_idx if self.padding_idx is not None else (0 if self.mask_zero else None)

    def weight_shapes(self, inputs: int, convention: Convention) -> dict[str, Shape]:
        return {"embeddings": (inputs, self.output_dim)}

    def initializers(self) -> dict[str, str]:
        return {"embeddings": "uniform_0.05"}

    def output_features(self, inputs: int) -> int:
        return self.output_dim


class DropoutSpec(LayerSpec):
    """Keras ``Dropout(rate)``: while training each element is dropped with probability ``rate`` and
    the rest are scaled by ``1/(1-rate)``; identity at inference. No weights."""

    kind: ClassVar[str] = "dropout"
    keras_class: ClassVar[str] = "Dropout"
    torch_class: ClassVar[str | None] = "Dropout"
    default_name: ClassVar[str] = "dropout_{n}"
    entry_key: ClassVar[str | None] = "dropout"
    entry_form: ClassVar[str] = "`{dropout: RATE}`"
    placements: ClassVar[frozenset[str]] = frozenset({"recurrent", "head"})

    dropout: Rate
    """Fraction of the elements dropped while training."""
    name: Name | None = None
    """Layer name; default `dropout_N` (N counts the model's Dropout layers from 0)."""


class SpatialDropoutSpec(LayerSpec):
    """Keras ``SpatialDropout1D(rate)``: while training whole feature channels are dropped, one mask
    per sequence (the same channels at every step), the rest scaled by ``1/(1-rate)``. Needs a
    time axis. No weights."""

    kind: ClassVar[str] = "spatial_dropout"
    keras_class: ClassVar[str] = "SpatialDropout1D"
    torch_class: ClassVar[str | None] = "Dropout1d"
    default_name: ClassVar[str] = "spatial_dropout_{n}"
    entry_key: ClassVar[str | None] = "spatial_dropout"
    entry_form: ClassVar[str] = "`{spatial_dropout: RATE}`"
    placements: ClassVar[frozenset[str]] = frozenset({"recurrent"})

    spatial_dropout: Rate
    """Fraction of the channels dropped while training."""
    name: Name | None = None
    """Layer name; default `spatial_dropout_N` (N counts the model's SpatialDropout1D layers from 0)."""


# -- recurrent cells -----------------------------------------------------------------------------


class RecurrentLayer(LayerSpec):
    """What every recurrent cell shares: units, sequences, dropout, direction, names."""

    reads_mask: ClassVar[bool] = True

    gates: ClassVar[int]
    gate_names: ClassVar[tuple[str, ...]]
    """The gate blocks in Keras's canonical order (the canonical weights' order)."""
    gate_orders: ClassVar[dict[str, tuple[int, ...]]]
    """Each framework's gate order (``keras``, ``torch``, ``onnx``) as indices into :attr:`gate_names`."""
    keras_cudnn_class: ClassVar[str | None] = None
    """Keras 2's CuDNN layer of the same math (``CuDNNLSTM``), read by the Keras importer."""
    default_name: ClassVar[str] = "recurrent_{n}"
    entry_key: ClassVar[str | None] = "cell"
    entry_form: ClassVar[str] = "a cell (`cell: lstm`...)"
    placements: ClassVar[frozenset[str]] = frozenset({"recurrent"})

    @classmethod
    def matches_entry(cls, value: dict[str, Any]) -> bool:
        return value.get("cell") == cls.kind

    def entry_label(self) -> str:
        return f"{{cell: {self.kind}, units: {self.units}}}"

    @classmethod
    def gate_index(cls, framework: str, units: int) -> list[int]:
        """Column indices taking Keras's gate blocks (each ``units`` wide) to ``framework``'s order.

        ``a[..., gate_index("torch", u)]`` is a canonical kernel's columns (or bias) in PyTorch's
        order; :func:`rnnspec.core.weights.permute_gates` applies it (or its inverse) on any axis.

        >>> GRUSpec.gate_index("torch", 1)
        [1, 0, 2]
        """
        try:
            order = cls.gate_orders[framework]
        except KeyError:
            raise ValueError(
                f"no gate order of {cls.keras_class} for {framework!r}; known: {', '.join(cls.gate_orders)}"
            ) from None
        return [block * units + k for block in order for k in range(units)]

    units: PositiveInt
    """Size of the hidden state (per direction)."""
    return_sequences: bool = False
    """Output every step (batch, time, units) instead of the last one (batch, units)."""
    activation: RecurrentActivation = "tanh"
    """Activation of the state / candidate (Keras `activation`)."""
    use_bias: bool = True
    """Whether the layer has bias vectors."""
    dropout: Rate = 0.0
    """Fraction of the inputs dropped during training (one mask per sequence)."""
    recurrent_dropout: Rate = 0.0
    """Fraction of the recurrent state dropped during training (one mask per sequence)."""
    go_backwards: bool = False
    """Process the sequence in reverse (Keras semantics: sequence outputs stay reversed)."""
    bidirectional: bool = False
    """Wrap the layer in Keras `Bidirectional`: a forward and a backward copy."""
    merge_mode: MergeMode = "concat"
    """How a bidirectional layer merges the two directions."""
    stateful: bool = False
    """Keras `stateful=True`, for prediction over consecutive batches: the final states of one batch are the
    initial states of the next (sample i of a batch continues sample i of the batch before); needs
    `input.batch_size`. Prediction only: `rnnspec.reset_states(model)` starts again from zeros."""
    trainable: bool = trainable_field()
    name: Name | None = None
    """Layer name; default `recurrent_<index>` (the index counts recurrent layers only)."""

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_units(self) -> int:
        """Feature size of this layer's output (after merging directions)."""
        return self.units * (2 if self.bidirectional and self.merge_mode == "concat" else 1)

    def bias_vectors(self, convention: Convention) -> int:
        """Bias vectors of length ``gates × units`` per direction: 1 in Keras, 2 in PyTorch, 0 without bias."""
        if not self.use_bias:
            return 0
        return 2 if convention == "torch" else 1

    def direction_shapes(self, inputs: int, convention: Convention) -> dict[str, Shape]:
        """The weights of one direction."""
        gu = self.gates * self.units
        shapes: dict[str, Shape] = {"kernel": (inputs, gu), "recurrent_kernel": (self.units, gu)}
        n_bias = self.bias_vectors(convention)
        if n_bias:
            shapes["bias"] = (gu,)
        if n_bias == 2:
            shapes["recurrent_bias"] = (gu,)
        return shapes

    def weight_shapes(self, inputs: int, convention: Convention) -> dict[str, Shape]:
        shapes = self.direction_shapes(inputs, convention)
        if not self.bidirectional:
            return shapes
        return {f"{d}/{leaf}": s for d in ("forward", "backward") for leaf, s in shapes.items()}

    def initializers(self) -> dict[str, str]:
        return {
            "kernel": "glorot_uniform",
            "recurrent_kernel": "orthogonal",
            "bias": "zeros",
            "recurrent_bias": "zeros",
        }

    def output_features(self, inputs: int) -> int:
        return self.output_units

    def output_per_step(self, per_step: bool) -> bool:
        return self.return_sequences

    def output_activation(self, incoming: str) -> str:
        return self.activation

    def keeps_mask(self) -> bool:
        return self.return_sequences

    def type_label(self) -> str:
        return "Bidirectional" if self.bidirectional else self.keras_class


class SimpleRNNSpec(RecurrentLayer):
    """Keras ``SimpleRNN``: ``h = activation(x·W + h·U + b)``."""

    kind: ClassVar[str] = "simple_rnn"
    keras_class: ClassVar[str] = "SimpleRNN"
    torch_class: ClassVar[str | None] = "RNN"
    onnx_op: ClassVar[str | None] = "RNN"
    gates: ClassVar[int] = 1
    gate_names: ClassVar[tuple[str, ...]] = ("h",)
    gate_orders: ClassVar[dict[str, tuple[int, ...]]] = {"keras": (0,), "torch": (0,), "onnx": (0,)}

    cell: Literal["simple_rnn"]
    """The cell type."""


class LSTMSpec(RecurrentLayer):
    """Keras ``LSTM`` (gates i, f, c, o)."""

    kind: ClassVar[str] = "lstm"
    keras_class: ClassVar[str] = "LSTM"
    torch_class: ClassVar[str | None] = "LSTM"
    onnx_op: ClassVar[str | None] = "LSTM"
    keras_cudnn_class: ClassVar[str | None] = "CuDNNLSTM"
    gates: ClassVar[int] = 4
    gate_names: ClassVar[tuple[str, ...]] = ("i", "f", "c", "o")
    gate_orders: ClassVar[dict[str, tuple[int, ...]]] = {
        "keras": (0, 1, 2, 3),
        "torch": (0, 1, 2, 3),  # i, f, g, o
        "onnx": (0, 3, 1, 2),  # i, o, f, c
    }

    cell: Literal["lstm"]
    """The cell type."""
    recurrent_activation: RecurrentActivation = "sigmoid"
    """Activation of the gates."""
    unit_forget_bias: bool = True
    """Initialise the forget-gate bias to 1 (Keras default)."""

    def initializers(self) -> dict[str, str]:
        return {**super().initializers(), "bias": "lstm_forget_bias" if self.unit_forget_bias else "zeros"}


class GRUSpec(RecurrentLayer):
    """Keras ``GRU`` (gates z, r, h)."""

    kind: ClassVar[str] = "gru"
    keras_class: ClassVar[str] = "GRU"
    torch_class: ClassVar[str | None] = "GRU"
    onnx_op: ClassVar[str | None] = "GRU"
    keras_cudnn_class: ClassVar[str | None] = "CuDNNGRU"
    gates: ClassVar[int] = 3
    gate_names: ClassVar[tuple[str, ...]] = ("z", "r", "h")
    gate_orders: ClassVar[dict[str, tuple[int, ...]]] = {
        "keras": (0, 1, 2),
        "torch": (1, 0, 2),  # r, z, n
        "onnx": (0, 1, 2),  # z, r, h
    }

    cell: Literal["gru"]
    """The cell type."""
    recurrent_activation: RecurrentActivation = "sigmoid"
    """Activation of the gates."""
    reset_after: bool = True
    """Apply the reset gate after the recurrent matmul (Keras 3 and PyTorch); false is the Keras <= 2.3 GRU."""

    def bias_vectors(self, convention: Convention) -> int:
        if self.use_bias and self.reset_after:
            return 2
        return super().bias_vectors(convention)

    def direction_shapes(self, inputs: int, convention: Convention) -> dict[str, Shape]:
        shapes = super().direction_shapes(inputs, convention)
        if self.use_bias and self.reset_after:
            # Keras keeps both biases of a reset-after GRU in one (2, 3·units) variable, in both conventions
            shapes.pop("recurrent_bias", None)
            shapes["bias"] = (2, self.gates * self.units)
        return shapes


# -- Dense ---------------------------------------------------------------------------------------


class DenseSpec(LayerSpec):
    """A Keras ``Dense`` layer (on every step when its input has a time axis)."""

    kind: ClassVar[str] = "dense"
    keras_class: ClassVar[str] = "Dense"
    torch_class: ClassVar[str | None] = "Linear"
    default_name: ClassVar[str] = "head"
    entry_key: ClassVar[str | None] = "units"
    entry_form: ClassVar[str] = "a Dense layer `{units: N, activation: ...}`"
    placements: ClassVar[frozenset[str]] = frozenset({"head"})

    def entry_label(self) -> str:
        return f"{{units: {self.units}, activation: {self.activation}}}"

    units: PositiveInt
    """Number of outputs (per step for a per-step head)."""
    activation: DenseActivation = "linear"
    """Activation; softmax and log_softmax (over the units) only on the output layer."""
    use_bias: bool = True
    """Whether the layer has a bias vector."""
    trainable: bool = trainable_field()
    name: Name | None = None
    """Layer name; default `head` (mapping form) or `head_N` (list form)."""

    def weight_shapes(self, inputs: int, convention: Convention) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {"kernel": (inputs, self.units)}
        if self.use_bias:
            shapes["bias"] = (self.units,)
        return shapes

    def initializers(self) -> dict[str, str]:
        return {"kernel": "glorot_uniform", "bias": "zeros"}

    def output_features(self, inputs: int) -> int:
        return self.units

    def output_activation(self, incoming: str) -> str:
        return self.activation

    @model_validator(mode="after")
    def _softmax_needs_classes(self) -> DenseSpec:
        if self.activation in ("softmax", "log_softmax") and self.units == 1:
            always = "1.0" if self.activation == "softmax" else "0.0 (log 1)"
            raise CrossFieldIssues(
                [
                    CrossFieldIssue(
                        path=("activation",),
                        message=f"a {self.activation} over 1 unit is always {always}, so the model cannot learn",
                        received=f"units: 1, activation: {self.activation}",
                        expected=f"{self.activation} with units >= 2 (one per class), or one sigmoid unit",
                        fix="use `activation: sigmoid` for a binary output, or set `units` to the number of classes",
                    )
                ]
            )
        return self


# -- LayerNormalization ---------------------------------------------------------------------------

Epsilon = Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]


class LayerNormOptions(_Strict):
    """The settings of a ``layer_norm`` entry: Keras ``LayerNormalization``'s arguments and defaults."""

    epsilon: Epsilon = 1e-3
    """Added to the variance before the square root (Keras default 1e-3; PyTorch's `nn.LayerNorm` defaults to
    1e-5). Greater than 0, so a constant step (a zero output at a masked step) normalises to `beta`."""
    center: bool = True
    """Add the learned offset `beta` (PyTorch: `bias=True`)."""
    scale: bool = True
    """Multiply by the learned scale `gamma` (PyTorch: `elementwise_affine=True`)."""


class LayerNormSpec(LayerSpec):
    """Keras ``LayerNormalization()`` over the feature axis: each step (or sample) is normalised on its own,
    ``(x - mean) / sqrt(var + epsilon) * gamma + beta`` with the biased variance of its features; PyTorch's
    ``nn.LayerNorm(features, eps=epsilon)``. Keeps the time axis and passes Keras's mask on. Weights
    ``gamma`` (with ``scale``) and ``beta`` (with ``center``), one per feature, in both conventions."""

    kind: ClassVar[str] = "layer_norm"
    keras_class: ClassVar[str] = "LayerNormalization"
    torch_class: ClassVar[str | None] = "LayerNorm"
    onnx_op: ClassVar[str | None] = "LayerNormalization"
    default_name: ClassVar[str] = "layer_norm_{n}"
    entry_key: ClassVar[str | None] = "layer_norm"
    entry_form: ClassVar[str] = "`{layer_norm: {}}`"
    placements: ClassVar[frozenset[str]] = frozenset({"recurrent", "head"})

    layer_norm: LayerNormOptions
    """The settings: `{}` (or nothing) for Keras's defaults, or `{epsilon: 0.001, center: true, scale: true}`."""
    trainable: bool = trainable_field()
    name: Name | None = None
    """Layer name; default `layer_norm_N` (N counts the model's LayerNormalization layers from 0)."""

    @field_validator("layer_norm", mode="before", json_schema_input_type=Union[LayerNormOptions, None])
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        return {} if value is None else value  # `- layer_norm:` in YAML is null: Keras's defaults

    @property
    def epsilon(self) -> float:
        return self.layer_norm.epsilon

    @property
    def center(self) -> bool:
        return self.layer_norm.center

    @property
    def scale(self) -> bool:
        return self.layer_norm.scale

    def weight_shapes(self, inputs: int, convention: Convention) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {}
        if self.scale:
            shapes["gamma"] = (inputs,)
        if self.center:
            shapes["beta"] = (inputs,)
        return shapes

    def initializers(self) -> dict[str, str]:
        return {"gamma": "ones", "beta": "zeros"}

    def output_activation(self, incoming: str) -> str:
        return "linear"  # normalised: no longer in the range of the activation before it

    def entry_label(self) -> str:
        options = self.layer_norm.model_dump(exclude_defaults=True)
        return "{layer_norm: {" + ", ".join(f"{k}: {v}" for k, v in options.items()) + "}}"


# -- MaxPooling1D / AveragePooling1D ---------------------------------------------------------------

PoolPadding = Literal["valid", "same"]


class PoolOptions(_Strict):
    """The settings of a ``max_pool`` / ``average_pool`` entry: Keras ``MaxPooling1D`` / ``AveragePooling1D``'s
    arguments (channels-last)."""

    pool_size: PositiveInt = 2
    """Steps in each window (Keras's MaxPooling1D default 2; AveragePooling1D has no default in Keras 3, the
    spec takes 2 for both)."""
    strides: PositiveInt | None = None
    """Steps between the windows' starts; default `pool_size` (windows side by side, as Keras)."""
    padding: PoolPadding = "valid"
    """`valid`: only whole windows, `floor((T - pool_size) / strides) + 1` steps out; `same`: `ceil(T / strides)`
    steps out, the windows padded (the extra step on the right, as Keras/TensorFlow). Padding never wins a max,
    and an average at the edge is over its real steps only (Keras; PyTorch's `count_include_pad=True` differs)."""


def pooled_steps(steps: int | None, window: int, strides: int, padding: str) -> int | None:
    """Output length of a 1-D pooling or convolution window over ``steps`` (None: variable), Keras's formulas:
    ``valid`` ``floor((T - window) / strides) + 1`` (0 or less: no whole window), ``same`` ``ceil(T / strides)``,
    ``causal`` (a convolution padded on the left by ``window - 1``) ``floor((T - 1) / strides) + 1``."""
    if steps is None:
        return None
    if padding == "same":
        return -(-steps // strides)
    if padding == "causal":
        return (steps - 1) // strides + 1
    return (steps - window) // strides + 1 if steps >= window else 0


def same_padding(steps: int, window: int, strides: int) -> tuple[int, int]:
    """Keras's (TensorFlow's) ``same`` padding of ``steps`` for ``window`` and ``strides``: ``(left, right)``,
    ``total = max((ceil(T / strides) - 1) * strides + window - T, 0)``, the extra step on the right."""
    total = max((-(-steps // strides) - 1) * strides + window - steps, 0)
    return total // 2, total - total // 2


class _PoolSpec(LayerSpec):
    """What ``max_pool`` and ``average_pool`` share: a window over the time axis of a sequence (no weights).
    Keras's pooling layers do not support masking: a mask reaching one is dropped (with a warning) and its
    padded steps pooled as data, so the spec refuses a masked input (see :func:`rnnspec.lang.spec`'s checks)."""

    placements: ClassVar[frozenset[str]] = frozenset({"recurrent"})
    options_key: ClassVar[str]
    slides_window: ClassVar[bool] = True
    drops_mask_unread: ClassVar[bool] = True
    """A window over the time axis: needs a sequence without a mask (the spec's checks)."""

    @classmethod
    def _options(cls, value: Any) -> Any:
        if value is None:
            return {}  # `- max_pool:` in YAML is null: Keras's defaults
        if isinstance(value, int) and not isinstance(value, bool):
            return {"pool_size": value}  # `{max_pool: 3}`: the pool size
        return value

    @property
    def options(self) -> PoolOptions:
        return getattr(self, self.options_key)

    @property
    def pool_size(self) -> int:
        return self.options.pool_size

    @property
    def strides(self) -> int:
        return self.options.strides or self.options.pool_size

    @property
    def padding(self) -> str:
        return self.options.padding

    def output_steps(self, steps: int | None) -> int | None:
        return pooled_steps(steps, self.pool_size, self.strides, self.padding)

    def keeps_mask(self) -> bool:
        return False

    def entry_label(self) -> str:
        options = self.options.model_dump(exclude_defaults=True)
        return f"{{{self.options_key}: {{" + ", ".join(f"{k}: {v}" for k, v in options.items()) + "}}"


class MaxPoolSpec(_PoolSpec):
    """Keras ``MaxPooling1D(pool_size, strides, padding)``: the largest value of each feature in each window of
    steps; PyTorch's ``nn.MaxPool1d`` over ``(batch, features, time)`` (``same``: padded with -inf)."""

    kind: ClassVar[str] = "max_pool"
    keras_class: ClassVar[str] = "MaxPooling1D"
    torch_class: ClassVar[str | None] = "MaxPool1d"
    onnx_op: ClassVar[str | None] = "MaxPool"
    default_name: ClassVar[str] = "max_pool_{n}"
    entry_key: ClassVar[str | None] = "max_pool"
    entry_form: ClassVar[str] = "`{max_pool: K}`"
    options_key: ClassVar[str] = "max_pool"

    max_pool: PoolOptions
    """The settings: `{}` (or nothing) for `pool_size: 2`, a number for the pool size, or
    `{pool_size: 2, strides: 2, padding: valid}`."""
    name: Name | None = None
    """Layer name; default `max_pool_N` (N counts the model's MaxPooling1D layers from 0)."""

    @field_validator("max_pool", mode="before", json_schema_input_type=Union[PoolOptions, PositiveInt, None])
    @classmethod
    def _default_options(cls, value: Any) -> Any:
        return cls._options(value)


class AveragePoolSpec(_PoolSpec):
    """Keras ``AveragePooling1D(pool_size, strides, padding)``: the mean of each feature over each window of steps;
    with ``same`` padding an edge window averages its real steps only (PyTorch's ``nn.AvgPool1d`` with
    ``count_include_pad=False``)."""

    kind: ClassVar[str] = "average_pool"
    keras_class: ClassVar[str] = "AveragePooling1D"
    torch_class: ClassVar[str | None] = "AvgPool1d"
    onnx_op: ClassVar[str | None] = "AveragePool"
    default_name: ClassVar[str] = "average_pool_{n}"
    entry_key: ClassVar[str | None] = "average_pool"
    entry_form: ClassVar[str] = "`{average_pool: K}`"
    options_key: ClassVar[str] = "average_pool"

    average_pool: PoolOptions
    """The settings: `{}` (or nothing) for `pool_size: 2`, a number for the pool size, or
    `{pool_size: 2, strides: 2, padding: valid}`."""
    name: Name | None = None
    """Layer name; default `average_pool_N` (N counts the model's AveragePooling1D layers from 0)."""

    @field_validator("average_pool", mode="before", json_schema_input_type=Union[PoolOptions, PositiveInt, None])
    @classmethod
    def _default_options(cls, value: Any) -> Any:
        return cls._options(value)


# -- Conv1D -----------------------------------------------------------------------------------------

ConvPadding = Literal["valid", "same", "causal"]


class Conv1DOptions(_Strict):
    """The settings of a ``conv1d`` entry: Keras ``Conv1D``'s arguments and defaults (channels-last, one group)."""

    filters: PositiveInt
    """Output features per step (the number of kernels)."""
    kernel_size: PositiveInt
    """Steps each kernel spans (before dilation)."""
    strides: PositiveInt = 1
    """Steps between the windows' starts."""
    padding: ConvPadding = "valid"
    """`valid`: whole windows only, `floor((T - span) / strides) + 1` steps out (span `(kernel_size - 1) *
    dilation_rate + 1`); `same`: `ceil(T / strides)` steps out, zero-padded as Keras pads (the extra step on the
    right); `causal`: zero-padded on the left by `span - 1`, so step t sees steps up to t only."""
    dilation_rate: PositiveInt = 1
    """Steps between a kernel's taps (Keras refuses `strides` > 1 together with `dilation_rate` > 1)."""
    activation: Activation = "linear"
    """Activation after the bias (Keras's default: none, `linear`)."""
    use_bias: bool = True
    """Whether the layer has a bias vector."""

    @model_validator(mode="after")
    def _strides_or_dilation(self) -> Conv1DOptions:
        if self.strides > 1 and self.dilation_rate > 1:
            raise CrossFieldIssues(
                [
                    CrossFieldIssue(
                        path=("dilation_rate",),
                        message="Keras's Conv1D takes strides > 1 or dilation_rate > 1, not both",
                        received=f"strides: {self.strides}, dilation_rate: {self.dilation_rate}",
                        expected="strides: 1 with a dilation, or dilation_rate: 1 with strides",
                        fix="set `dilation_rate: 1`, or `strides: 1`",
                    )
                ]
            )
        return self


class Conv1DSpec(LayerSpec):
    """Keras ``Conv1D(filters, kernel_size, ...)`` over the time axis of a sequence, as a front-end before (or
    between) recurrent layers (Keras's imdb_cnn_lstm example): ``y[t] = activation(bias + sum_j x[t·strides +
    j·dilation_rate] · kernel[j])`` (cross-correlation, no flip) on the padded input. Weights ``kernel``
    ``(kernel_size, inputs, filters)`` (Keras's layout; PyTorch's ``nn.Conv1d`` weight is its ``(2, 1, 0)``
    transpose) and ``bias`` ``(filters,)``. Keras's Conv1D does not support masking: a masked input is refused."""

    kind: ClassVar[str] = "conv1d"
    keras_class: ClassVar[str] = "Conv1D"
    torch_class: ClassVar[str | None] = "Conv1d"
    onnx_op: ClassVar[str | None] = "Conv"
    default_name: ClassVar[str] = "conv1d_{n}"
    entry_key: ClassVar[str | None] = "conv1d"
    entry_form: ClassVar[str] = "`{conv1d: {filters: N, kernel_size: K}}`"
    placements: ClassVar[frozenset[str]] = frozenset({"recurrent"})
    slides_window: ClassVar[bool] = True
    drops_mask_unread: ClassVar[bool] = True
    """A window over the time axis: needs a sequence without a mask (the spec's checks)."""

    conv1d: Conv1DOptions
    """The settings: `{filters: N, kernel_size: K}` and optionally `strides`, `padding` (valid/same/causal),
    `dilation_rate`, `activation`, `use_bias`."""
    trainable: bool = trainable_field()
    name: Name | None = None
    """Layer name; default `conv1d_N` (N counts the model's Conv1D layers from 0)."""

    @property
    def filters(self) -> int:
        return self.conv1d.filters

    @property
    def kernel_size(self) -> int:
        return self.conv1d.kernel_size

    @property
    def strides(self) -> int:
        return self.conv1d.strides

    @property
    def padding(self) -> str:
        return self.conv1d.padding

    @property
    def dilation_rate(self) -> int:
        return self.conv1d.dilation_rate

    @property
    def activation(self) -> str:
        return self.conv1d.activation

    @property
    def use_bias(self) -> bool:
        return self.conv1d.use_bias

    @property
    def span(self) -> int:
        """Steps one window covers: ``(kernel_size - 1) * dilation_rate + 1``."""
        return (self.conv1d.kernel_size - 1) * self.conv1d.dilation_rate + 1

    def padding_for(self, steps: int) -> tuple[int, int]:
        """Zero steps ``(left, right)`` Keras adds to ``steps`` input steps before the valid convolution."""
        c = self.conv1d
        if c.padding == "same":
            return same_padding(steps, self.span, c.strides)
        if c.padding == "causal":
            return self.span - 1, 0
        return 0, 0

    def weight_shapes(self, inputs: int, convention: Convention) -> dict[str, Shape]:
        c = self.conv1d
        shapes: dict[str, Shape] = {"kernel": (c.kernel_size, inputs, c.filters)}
        if c.use_bias:
            shapes["bias"] = (c.filters,)
        return shapes

    def initializers(self) -> dict[str, str]:
        return {"kernel": "glorot_uniform", "bias": "zeros"}

    def output_features(self, inputs: int) -> int:
        return self.conv1d.filters

    def output_steps(self, steps: int | None) -> int | None:
        return pooled_steps(steps, self.span, self.conv1d.strides, self.conv1d.padding)

    def output_activation(self, incoming: str) -> str:
        return self.conv1d.activation

    def keeps_mask(self) -> bool:
        return False

    def entry_label(self) -> str:
        options = self.conv1d.model_dump(exclude_defaults=True)
        return "{conv1d: {" + ", ".join(f"{k}: {v}" for k, v in options.items()) + "}}"


# -- BatchNormalization ---------------------------------------------------------------------------

Momentum = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class BatchNormOptions(_Strict):
    """The settings of a ``batch_norm`` entry: Keras ``BatchNormalization``'s arguments and defaults."""

    momentum: Momentum = 0.99
    """Weight of the old value in the moving statistics' update (Keras default 0.99): `moving = moving * momentum +
    batch * (1 - momentum)`. PyTorch's `nn.BatchNorm1d(momentum=...)` is `1 - momentum` (0.01 for Keras's default)."""
    epsilon: Epsilon = 1e-3
    """Added to the variance before the square root (Keras default 1e-3; PyTorch's `nn.BatchNorm1d` 1e-5)."""
    center: bool = True
    """Add the learned offset `beta` (PyTorch: `affine=True`)."""
    scale: bool = True
    """Multiply by the learned scale `gamma` (PyTorch: `affine=True`)."""


class BatchNormSpec(LayerSpec):
    """Keras ``BatchNormalization()`` over the feature axis (every other axis reduced: batch and time together for
    a sequence): ``(x - mean) / sqrt(var + epsilon) * gamma + beta``. At inference ``mean`` / ``var`` are the moving
    statistics; while training they are the batch's (biased variance; with Keras's mask, over the valid steps only,
    each sum divided by ``count + 1e-7``), and the moving statistics move towards them by ``1 - momentum`` per
    batch. A frozen layer (``trainable: false``) always uses the moving statistics, as Keras's. Keeps the time axis
    and passes Keras's mask on. Weights ``gamma`` (with ``scale``) and ``beta`` (with ``center``), trainable, and
    ``moving_mean`` / ``moving_variance``, never trained (Keras's non-trainable weights), one per feature."""

    reads_mask: ClassVar[bool] = True
    batch_statistics: ClassVar[bool] = True
    kind: ClassVar[str] = "batch_norm"
    keras_class: ClassVar[str] = "BatchNormalization"
    torch_class: ClassVar[str | None] = "BatchNorm1d"
    onnx_op: ClassVar[str | None] = "BatchNormalization"
    default_name: ClassVar[str] = "batch_norm_{n}"
    entry_key: ClassVar[str | None] = "batch_norm"
    entry_form: ClassVar[str] = "`{batch_norm: {}}`"
    placements: ClassVar[frozenset[str]] = frozenset({"recurrent", "head"})
    moving_statistics: ClassVar[tuple[str, ...]] = ("moving_mean", "moving_variance")
    """The weights training sets from the batches (not through the optimizer)."""

    batch_norm: BatchNormOptions
    """The settings: `{}` (or nothing) for Keras's defaults, or `{momentum: 0.99, epsilon: 0.001, center: true,
    scale: true}`."""
    trainable: bool = trainable_field()
    name: Name | None = None
    """Layer name; default `batch_norm_N` (N counts the model's BatchNormalization layers from 0)."""

    @field_validator("batch_norm", mode="before", json_schema_input_type=Union[BatchNormOptions, None])
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        return {} if value is None else value  # `- batch_norm:` in YAML is null: Keras's defaults

    @property
    def momentum(self) -> float:
        return self.batch_norm.momentum

    @property
    def epsilon(self) -> float:
        return self.batch_norm.epsilon

    @property
    def center(self) -> bool:
        return self.batch_norm.center

    @property
    def scale(self) -> bool:
        return self.batch_norm.scale

    def weight_shapes(self, inputs: int, convention: Convention) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {}
        if self.batch_norm.scale:
            shapes["gamma"] = (inputs,)
        if self.batch_norm.center:
            shapes["beta"] = (inputs,)
        return {**shapes, "moving_mean": (inputs,), "moving_variance": (inputs,)}

    def initializers(self) -> dict[str, str]:
        return {"gamma": "ones", "beta": "zeros", "moving_mean": "zeros", "moving_variance": "ones"}

    def leaf_trainable(self, leaf: str) -> bool:
        return leaf not in self.moving_statistics and self.is_trainable()

    def output_activation(self, incoming: str) -> str:
        return "linear"

    def entry_label(self) -> str:
        options = self.batch_norm.model_dump(exclude_defaults=True)
        return "{batch_norm: {" + ", ".join(f"{k}: {v}" for k, v in options.items()) + "}}"


# -- Activation ------------------------------------------------------------------------------------


class ActivationSpec(LayerSpec):
    """Keras's standalone ``Activation(name)`` layer: the activation applied element-wise (``softmax`` and
    ``log_softmax`` over the last axis), as in ``Dense(1)`` then ``Activation('sigmoid')``. No weights; keeps the
    time axis and passes Keras's mask on. PyTorch has no one module for it (a function of the forward)."""

    kind: ClassVar[str] = "activation"
    keras_class: ClassVar[str] = "Activation"
    default_name: ClassVar[str] = "activation_{n}"
    entry_key: ClassVar[str | None] = "activation"
    entry_form: ClassVar[str] = "`{activation: NAME}`"
    placements: ClassVar[frozenset[str]] = frozenset({"recurrent", "head"})

    activation: LayerActivation
    """The activation: an element-wise one (`sigmoid`, `relu`, `tanh`...), or `softmax` / `log_softmax` over the
    features."""
    name: Name | None = None
    """Layer name; default `activation_N` (N counts the model's Activation layers from 0)."""

    @classmethod
    def matches_entry(cls, value: dict[str, Any]) -> bool:
        return "activation" in value and "units" not in value  # `{units: N, activation: ...}` is a Dense layer

    def output_activation(self, incoming: str) -> str:
        return incoming if self.activation == "linear" else self.activation


# -- RepeatVector ----------------------------------------------------------------------------------


class RepeatVectorSpec(LayerSpec):
    """Keras ``RepeatVector(n)``: a vector ``(batch, features)`` becomes the sequence ``(batch, n, features)``, the
    same vector at every step, as a sequence encoder (``return_sequences: false``) feeds a recurrent decoder (LSTM
    autoencoders, keras.io's addition RNN). No weights. Keras drops any mask here (``RepeatVector`` does not
    support masking), so the layers after it see none."""

    kind: ClassVar[str] = "repeat_vector"
    keras_class: ClassVar[str] = "RepeatVector"
    default_name: ClassVar[str] = "repeat_vector_{n}"
    entry_key: ClassVar[str | None] = "repeat_vector"
    entry_form: ClassVar[str] = "`{repeat_vector: N}`"
    placements: ClassVar[frozenset[str]] = frozenset({"recurrent"})

    repeat_vector: PositiveInt
    """How many steps the output has (Keras's `n`)."""
    name: Name | None = None
    """Layer name; default `repeat_vector_N` (N counts the model's RepeatVector layers from 0)."""

    def output_per_step(self, per_step: bool) -> bool:
        return True

    def output_steps(self, steps: int | None) -> int | None:
        return self.repeat_vector

    def keeps_mask(self) -> bool:
        return False


# -- GlobalMaxPooling1D / GlobalAveragePooling1D ------------------------------------------------------


class GlobalPoolOptions(_Strict):
    """The settings of a ``global_max_pool`` / ``global_average_pool`` entry: Keras's arguments and defaults."""

    keepdims: bool = False
    """Keep the time axis with one step, `(batch, 1, features)` (Keras's `keepdims`); false: `(batch, features)`."""


class _GlobalPoolSpec(LayerSpec):
    """What both global poolings share: one vector per sample from a sequence, no weights, no mask after them."""

    placements: ClassVar[frozenset[str]] = frozenset({"recurrent"})

    @classmethod
    def options_of(cls, layer: Any) -> GlobalPoolOptions:
        return getattr(layer, cls.kind)

    @property
    def keepdims(self) -> bool:
        return type(self).options_of(self).keepdims

    def output_per_step(self, per_step: bool) -> bool:
        return self.keepdims

    def output_steps(self, steps: int | None) -> int | None:
        return 1

    def keeps_mask(self) -> bool:
        return False

    def entry_label(self) -> str:
        return f"{{{self.kind}: {{{'keepdims: true' if self.keepdims else ''}}}}}"


class GlobalMaxPoolSpec(_GlobalPoolSpec):
    """Keras ``GlobalMaxPooling1D()``: the largest value of each feature over **all** steps. Keras's layer does not
    support masking: padded steps take part in the max (what a recurrent layer outputs there: the previous
    output, or zeros) and the mask ends here."""

    kind: ClassVar[str] = "global_max_pool"
    keras_class: ClassVar[str] = "GlobalMaxPooling1D"
    default_name: ClassVar[str] = "global_max_pool_{n}"
    entry_key: ClassVar[str | None] = "global_max_pool"
    entry_form: ClassVar[str] = "`{global_max_pool: {}}`"

    global_max_pool: GlobalPoolOptions
    """The settings: `{}` (or nothing) for Keras's defaults, or `{keepdims: true}`."""
    name: Name | None = None
    """Layer name; default `global_max_pool_N` (N counts the model's GlobalMaxPooling1D layers from 0)."""

    @field_validator("global_max_pool", mode="before", json_schema_input_type=Union[GlobalPoolOptions, None])
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        return {} if value is None else value


class GlobalAveragePoolSpec(_GlobalPoolSpec):
    """Keras ``GlobalAveragePooling1D()``: the mean of each feature over the valid steps (Keras's masked mean:
    ``sum(where(mask, x, 0)) / sum(mask)``; a fully padded row is 0/0, NaN, as in Keras); the mask ends here."""

    reads_mask: ClassVar[bool] = True
    kind: ClassVar[str] = "global_average_pool"
    keras_class: ClassVar[str] = "GlobalAveragePooling1D"
    default_name: ClassVar[str] = "global_average_pool_{n}"
    entry_key: ClassVar[str | None] = "global_average_pool"
    entry_form: ClassVar[str] = "`{global_average_pool: {}}`"

    global_average_pool: GlobalPoolOptions
    """The settings: `{}` (or nothing) for Keras's defaults, or `{keepdims: true}`."""
    name: Name | None = None
    """Layer name; default `global_average_pool_N` (N counts the model's GlobalAveragePooling1D layers from 0)."""

    @field_validator("global_average_pool", mode="before", json_schema_input_type=Union[GlobalPoolOptions, None])
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        return {} if value is None else value


# -- Flatten ---------------------------------------------------------------------------------------


class FlattenOptions(_Strict):
    """The settings of a ``flatten`` entry: none (Keras's ``Flatten`` on channels-last data)."""


class FlattenSpec(LayerSpec):
    """Keras ``Flatten()``: a fixed-length sequence ``(batch, steps, features)`` becomes one vector per sample,
    ``(batch, steps * features)`` in C order (``out[b, t * features + f] = x[b, t, f]``; PyTorch's
    ``torch.flatten(x, 1)``), so its width depends on ``input.seq_len``, which must be fixed. On a vector
    ``(batch, features)`` it changes nothing. No weights. Keras's Flatten does not support masking: it drops a mask
    (with a warning), so a spec may not flatten a masked sequence."""

    kind: ClassVar[str] = "flatten"
    keras_class: ClassVar[str] = "Flatten"
    torch_class: ClassVar[str | None] = "Flatten"
    onnx_op: ClassVar[str | None] = "Flatten"
    default_name: ClassVar[str] = "flatten_{n}"
    entry_key: ClassVar[str | None] = "flatten"
    entry_form: ClassVar[str] = "`{flatten: {}}`"
    placements: ClassVar[frozenset[str]] = frozenset({"recurrent"})
    drops_mask_unread: ClassVar[bool] = True

    flatten: FlattenOptions
    """No settings: `{}` (or nothing)."""
    name: Name | None = None
    """Layer name; default `flatten_N` (N counts the model's Flatten layers from 0)."""

    @field_validator("flatten", mode="before", json_schema_input_type=Union[FlattenOptions, None])
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        return {} if value is None else value

    def output_width(self, inputs: int, steps: int | None, per_step: bool) -> int:
        if not per_step or steps is None:
            return inputs  # no time axis: nothing to flatten; a variable one is refused by the spec's check
        return inputs * steps

    def output_per_step(self, per_step: bool) -> bool:
        return False

    def output_steps(self, steps: int | None) -> int | None:
        return 1

    def keeps_mask(self) -> bool:
        return False

    def entry_label(self) -> str:
        return "{flatten: {}}"


# -- the registries and the list entries -----------------------------------------------------------

KINDS: tuple[type[LayerSpec], ...] = (
    MaskingSpec,
    EmbeddingSpec,
    SimpleRNNSpec,
    LSTMSpec,
    GRUSpec,
    DenseSpec,
    DropoutSpec,
    SpatialDropoutSpec,
    LayerNormSpec,
    BatchNormSpec,
    ActivationSpec,
    RepeatVectorSpec,
    GlobalMaxPoolSpec,
    GlobalAveragePoolSpec,
    MaxPoolSpec,
    AveragePoolSpec,
    Conv1DSpec,
    FlattenSpec,
)
"""Every layer kind: the one list a new kind joins. For list entries, the order is also the order in
which :func:`entry_kind` tries their keys (a Dense's ``units`` before ``dropout``: a Dense entry
with a stray ``dropout`` key is a Dense told to move it)."""
LAYER_KINDS: dict[str, type[LayerSpec]] = {cls.kind: cls for cls in KINDS}
"""Every layer kind by tag; each backend, exporter and importer registers one entry per kind."""
RECURRENT_KINDS: dict[str, type[RecurrentLayer]] = {
    cls.kind: cls for cls in KINDS if isinstance(cls, type) and issubclass(cls, RecurrentLayer)
}
"""Recurrent cells by their ``cell`` tag."""
CELL_TAGS: tuple[str, ...] = tuple(RECURRENT_KINDS)

KERAS_CELL_NAMES: dict[str, str] = {}
"""Keras class names (lower-cased, and Keras 2's CuDNN variants) → the ``cell`` tag, for suggestions."""
for _tag, _cls in RECURRENT_KINDS.items():
    KERAS_CELL_NAMES[_cls.keras_class.lower()] = _tag
    KERAS_CELL_NAMES[f"cudnn{_cls.keras_class.lower()}"] = _tag
    KERAS_CELL_NAMES[f"{_cls.keras_class.lower()}cell"] = _tag
KERAS_CELL_NAMES.update({"rnn": "simple_rnn", "simplernn": "simple_rnn", "vanilla": "simple_rnn"})


def entry_kinds(placement: str) -> list[type[LayerSpec]]:
    """The kinds that may be written in the ``placement`` list (``recurrent`` or ``head``), in :data:`KINDS` order."""
    return [cls for cls in KINDS if placement in cls.placements and cls.entry_key is not None]


def entry_kind(value: Any, placement: str | None = None) -> type[LayerSpec] | None:
    """Which kind a ``recurrent`` or ``head`` list entry is written as (None: none).

    A ``cell`` key decides alone (an unknown cell is None); otherwise the first kind of :data:`KINDS`
    whose ``entry_key`` the mapping holds. Without ``placement`` every list kind is tried (a Dense in
    ``recurrent`` is a layer that lacks its ``cell``, which the loader says).

    >>> entry_kind({"dropout": 0.2}).kind
    'dropout'
    """
    if not isinstance(value, dict):
        return None
    if "cell" in value:
        cell = value["cell"]
        return RECURRENT_KINDS.get(cell) if isinstance(cell, str) else None
    for cls in KINDS:
        if cls.entry_key is None or (placement is not None and placement not in cls.placements):
            continue
        if cls.matches_entry(value):
            return cls
    return None


def _entry_tag(value: Any) -> str | None:
    """The pydantic discriminator of the list entries: the tag of :func:`entry_kind`, or a built layer's kind."""
    if isinstance(value, dict):
        cls = entry_kind(value)
        return cls.kind if cls is not None else None
    return getattr(value, "kind", None)


def one_of(words: list[str], conjunction: str = "or") -> str:
    """``a, b or c``: a list in words."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def entry_forms(placement: str) -> str:
    """The forms an entry of the ``placement`` list may take, in words (each distinct form once)."""
    return one_of(list(dict.fromkeys(cls.entry_form for cls in entry_kinds(placement))))


_ENTRY_ERROR = {"custom_error_type": "entry_kind", "custom_error_message": "unknown entry kind"}


def _entry_union(placement: str) -> Any:
    """The pydantic discriminated union of the kinds a ``placement`` list takes, tagged by kind."""
    members = [Annotated[cls, Tag(cls.kind)] for cls in entry_kinds(placement)]
    return Annotated[functools.reduce(operator.or_, members), Discriminator(_entry_tag, **_ENTRY_ERROR)]


RecurrentEntry = _entry_union("recurrent")
"""An entry of ``recurrent``: a cell (``cell: lstm``...), ``{dropout: RATE}``, ``{spatial_dropout: RATE}``,
``{layer_norm: {}}``, ``{activation: NAME}``, ``{repeat_vector: N}``, ``{global_max_pool: {}}`` or
``{global_average_pool: {}}``; also ``{masking: {mask_value: V}}``."""
HeadEntry = _entry_union("head")
"""An entry of a ``head`` list: a Dense layer ``{units, activation, use_bias, name}``, ``{dropout: RATE}``,
``{layer_norm: {}}`` or ``{activation: NAME}``."""

RECURRENT_ACTIVATIONS: tuple[str, ...] = RecurrentActivation.__args__  # type: ignore[attr-defined]
