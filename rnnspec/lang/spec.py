"""The spec language, format 1.2, as pydantic models.

The field names are Keras's terms of art (``units``, ``return_sequences``, ``go_backwards``...),
and every default is Keras's default, so a Keras user reads a spec without a manual. Attribute
docstrings become the descriptions of the JSON Schema (``rnnspec schema``).

The layer kinds live in :mod:`rnnspec.lang.layers`, each described once; this module holds the
model around them (input, the recurrent list, the head, training). Checks that involve one object
live on that object; checks that relate several parts of the model (the stack, the loss against
the head...) live in :meth:`ModelSpec._check_model` and raise :class:`CrossFieldIssues`, which the
loader turns into located errors.

Formats 1.1 and 1.2 are additive: every ``rnnspec: 1`` or ``rnnspec: 1.1`` file is valid and means the
same; ``rnnspec: 1.1`` and ``rnnspec: 1.2`` name the same language (1.2 adds layer kinds: ``activation``,
``repeat_vector``, ``global_max_pool``, ``global_average_pool``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple, Union

from annotated_types import MinLen
from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from rnnspec.lang.layers import (
    ACTIVATIONS,
    CELL_TAGS,
    RECURRENT_ACTIVATIONS,
    ActivationSpec,
    Convention,
    CrossFieldIssue,
    CrossFieldIssues,
    DenseSpec,
    DropoutSpec,
    EmbeddingSpec,
    GRUSpec,
    HeadEntry,
    LayerSpec,
    LSTMSpec,
    MaskingSpec,
    Name,
    PositiveInt,
    RecurrentEntry,
    RecurrentLayer,
    RepeatVectorSpec,
    SimpleRNNSpec,
    SpatialDropoutSpec,
    _Strict,
    one_of,
)
from rnnspec.lang.losses import LOSSES, METRICS, canonical_loss, canonical_metric

__all__ = [
    "CELL_TAGS",
    "FORMAT_VERSION",
    "RECURRENT_ACTIVATIONS",
    "REGRESSION_LOSSES",
    "SGD",
    "ActivationSpec",
    "Adam",
    "CrossFieldIssue",
    "CrossFieldIssues",
    "DenseSpec",
    "DropoutSpec",
    "EmbeddingSpec",
    "GRUSpec",
    "HeadSpec",
    "InputSpec",
    "LSTMSpec",
    "LossSpec",
    "ModelSpec",
    "RMSprop",
    "RecurrentSpec",
    "SimpleRNNSpec",
    "SpatialDropoutSpec",
    "TrainingSpec",
]

FORMAT_VERSION = 1.2

LossName = Literal[tuple(LOSSES)]  # type: ignore[valid-type]
"""The loss names, from the loss registry (:mod:`rnnspec.lang.losses`)."""
MetricName = Literal[tuple(METRICS)]  # type: ignore[valid-type]
REGRESSION_LOSSES: tuple[str, ...] = tuple(name for name, kind in LOSSES.items() if kind.regression)
CLASSIFICATION_LOSSES: tuple[str, ...] = tuple(name for name, kind in LOSSES.items() if not kind.regression)
RecurrentSpec = RecurrentLayer
HeadSpec = DenseSpec


class InputSpec(_Strict):
    """What one sample is: a sequence of integer token ids or of float feature vectors."""

    vocab_size: PositiveInt | None = None
    """Token ids are integers in [0, vocab_size). Exactly one of vocab_size and features."""
    features: PositiveInt | None = None
    """Each step is a float vector of this size (one-hot, dense). Exactly one of vocab_size and features."""
    seq_len: PositiveInt | None = None
    """Number of time steps; omitted means variable length (None in shapes)."""
    mask_value: Annotated[float, Field(allow_inf_nan=False)] | None = None
    """Keras `Masking(mask_value)` on `features` input: a step whose features all equal it is padding."""
    batch_size: PositiveInt | None = None
    """The fixed number of samples per batch (Keras's `batch_shape` on the Input), which a `stateful: true`
    recurrent layer needs: its states hold one row per sample. Only with a stateful layer."""

    @model_validator(mode="after")
    def _one_kind(self) -> InputSpec:
        if (self.vocab_size is None) == (self.features is None):
            both = self.vocab_size is not None
            raise CrossFieldIssues(
                [
                    CrossFieldIssue(
                        path=(),
                        message="input needs exactly one of `vocab_size` and `features`",
                        received="both" if both else "neither",
                        expected="`vocab_size: N` for integer token ids, or `features: N` for float vectors",
                        fix="keep `vocab_size` and add an `embedding`, or keep `features` (one-hot or dense input)"
                        if both
                        else "add `vocab_size: N` (token ids) or `features: N` (feature vectors)",
                    )
                ]
            )
        if self.mask_value is not None and self.vocab_size is not None:
            raise CrossFieldIssues(
                [
                    CrossFieldIssue(
                        path=("mask_value",),
                        message="mask_value masks float feature vectors, but the input is token ids",
                        received=f"mask_value: {self.mask_value} with vocab_size: {self.vocab_size}",
                        expected="mask_value with `features: N`; token ids are masked by `embedding.mask_zero`",
                        fix="remove `mask_value` and set `mask_zero: true` in `embedding`",
                    )
                ]
            )
        return self


LearningRate = Annotated[float, Field(gt=0, le=1000.0, allow_inf_nan=False)]
"""A finite learning rate up to 1000 (larger ones only overflow float32 weights to inf, then NaN)."""
Epsilon = Annotated[float, Field(ge=1e-12, le=1.0, allow_inf_nan=False)]
"""Keras's epsilon, from 1e-12 (smaller ones vanish in float32 and the update divides by ~0) to 1."""


class _OptimizerBase(_Strict):
    clipnorm: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    """Clip each gradient to this L2 norm."""
    clipvalue: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    """Clip each gradient element to [-clipvalue, clipvalue]."""

    @model_validator(mode="after")
    def _one_clip(self) -> _OptimizerBase:
        if self.clipnorm is not None and self.clipvalue is not None:
            raise CrossFieldIssues(
                [
                    CrossFieldIssue(
                        path=("clipvalue",),
                        message="Keras allows only one of clipnorm and clipvalue",
                        received=f"clipnorm: {self.clipnorm}, clipvalue: {self.clipvalue}",
                        expected="one of them",
                        fix="remove `clipnorm` or `clipvalue`",
                    )
                ]
            )
        return self


class SGD(_OptimizerBase):
    """Keras ``SGD``."""

    name: Literal["sgd"]
    """Optimizer name."""
    learning_rate: LearningRate = 0.01
    """Keras default 0.01."""
    momentum: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Momentum factor."""
    nesterov: bool = False
    """Use Nesterov momentum."""


class Adam(_OptimizerBase):
    """Keras ``Adam`` (epsilon added to sqrt(v) before bias correction: Keras's "epsilon hat")."""

    name: Literal["adam"]
    """Optimizer name."""
    learning_rate: LearningRate = 0.001
    """Keras default 0.001."""
    beta_1: Annotated[float, Field(ge=0, lt=1)] = 0.9
    """Decay of the first moment."""
    beta_2: Annotated[float, Field(ge=0, lt=1)] = 0.999
    """Decay of the second moment."""
    epsilon: Epsilon = 1e-7
    """Keras default 1e-7."""
    amsgrad: bool = False
    """Use the AMSGrad variant."""


class RMSprop(_OptimizerBase):
    """Keras ``RMSprop`` (epsilon inside the square root)."""

    name: Literal["rmsprop"]
    """Optimizer name."""
    learning_rate: LearningRate = 0.001
    """Keras default 0.001."""
    rho: Annotated[float, Field(ge=0, lt=1)] = 0.9
    """Decay of the moving average of squared gradients."""
    momentum: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Momentum factor."""
    epsilon: Epsilon = 1e-7
    """Keras default 1e-7."""
    centered: bool = False
    """Normalise by the variance estimate instead of the second moment."""


OptimizerSpec = Annotated[Union[SGD, Adam, RMSprop], Field(discriminator="name")]
OptimizerName = Literal["sgd", "adam", "rmsprop"]
OPTIMIZER_TAGS: tuple[str, ...] = OptimizerName.__args__  # type: ignore[attr-defined]


class LossSpec(_Strict):
    """A Keras loss; a plain name is short for ``{name: NAME}``."""

    name: LossName
    """Loss name: the cross-entropies, or `mse`, `mae`, `huber` for regression."""
    from_logits: bool = False
    """The model's outputs are logits (no sigmoid/softmax head), as in seed 004 (cross-entropies only)."""
    delta: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    """Huber's threshold between the squared and the linear part (Keras default 1.0; `huber` only)."""

    @property
    def huber_delta(self) -> float:
        return 1.0 if self.delta is None else self.delta

    @model_validator(mode="after")
    def _options_fit(self) -> LossSpec:
        issues = []
        if self.delta is not None and not LOSSES[self.name].delta:
            issues.append(
                CrossFieldIssue(
                    path=("delta",),
                    message=f"`delta` is Huber's threshold, but the loss is {self.name}",
                    received=f"delta: {self.delta} with {self.name}",
                    expected="`delta` only with `name: huber`",
                    fix="remove `delta`, or use `name: huber`",
                )
            )
        if self.from_logits and not LOSSES[self.name].from_logits:
            issues.append(
                CrossFieldIssue(
                    path=("from_logits",),
                    message=f"{self.name} compares the outputs with numbers; it has no `from_logits`",
                    received=f"from_logits: true with {self.name}",
                    expected="`from_logits` only with a cross-entropy loss",
                    fix="remove `from_logits`",
                )
            )
        if issues:
            raise CrossFieldIssues(issues)
        return self


class TrainingSpec(_Strict):
    """How ``rnnspec train`` fits the model (Keras ``compile`` + ``fit`` arguments)."""

    optimizer: OptimizerSpec = Field(default_factory=lambda: RMSprop(name="rmsprop"))
    """An optimizer name with Keras defaults (`sgd`, `adam`, `rmsprop`), or `{name: adam, learning_rate: ...}`."""
    loss: LossSpec
    """A loss name, or `{name: ..., from_logits: true}` / `{name: huber, delta: 2.0}`."""
    metrics: list[MetricName] = Field(default_factory=list)
    """Metrics reported per epoch, by Keras's names: `accuracy`, `mae`, `mse`, `rmse`."""
    batch_size: PositiveInt = 32
    """Samples per optimizer step (Keras default 32)."""
    epochs: PositiveInt = 1
    """Passes over the training data."""
    validation_split: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """Fraction of the data held out for validation (Keras takes the last samples, before shuffling)."""
    shuffle: bool = True
    """Shuffle the training samples every epoch."""
    data: str | None = None
    """Default data: a path, or `builtin:NAME`."""

    @field_validator("optimizer", mode="before", json_schema_input_type=Union[OptimizerName, OptimizerSpec])
    @classmethod
    def _optimizer_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("loss", mode="before", json_schema_input_type=Union[LossName, LossSpec])
    @classmethod
    def _loss_name(cls, value: Any) -> Any:  # Keras's spellings (mean_squared_error...) read as rnnspec's
        if isinstance(value, dict) and "name" in value:
            return {**value, "name": canonical_loss(value["name"])}
        return {"name": canonical_loss(value)} if isinstance(value, str) else value

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_names(cls, value: Any) -> Any:  # Keras's spellings (acc, mean_absolute_error...) as rnnspec's
        return [canonical_metric(v) for v in value] if isinstance(value, list) else value


def _head_form(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, (dict, DenseSpec)):
        return "mapping"
    return None


HeadField = Annotated[
    Union[
        Annotated[DenseSpec, Tag("mapping")],
        Annotated[list[HeadEntry], MinLen(1), Tag("list")],
    ],
    Discriminator(
        _head_form,
        custom_error_type="head_form",
        custom_error_message="head must be a mapping or a list",
    ),
]


class LayerShape(NamedTuple):
    """One layer of a stack with what it receives and gives (:meth:`ModelSpec.shapes`)."""

    name: str
    layer: LayerSpec
    inputs: int
    """Features per step (or per sample) of its input."""
    input_steps: int | None
    """Steps of its input (None: variable, or no time axis's worth of meaning)."""
    input_per_step: bool
    """Whether its input has a time axis."""
    features: int
    """Features of its output."""
    steps: int | None
    per_step: bool


class ModelSpec(_Strict):
    """A recurrent sequence model: input, optional embedding, a stack of recurrent layers, optional head."""

    rnnspec: Literal[1, 1.1, 1.2]
    """Format version of the spec: 1, 1.1 or 1.2 (each a superset of the one before; every older file means the
    same)."""
    name: Name
    """Model name: letters, digits, '-' and '_'."""
    convention: Convention = "keras"
    """How biases are parameterized: `keras` (one bias for SimpleRNN/LSTM) or `torch` (two, as nn.RNN/nn.LSTM)."""
    input: InputSpec
    """The model input."""
    embedding: EmbeddingSpec | None = None
    """Optional embedding of token ids (only with `vocab_size`)."""
    recurrent: Annotated[list[RecurrentEntry], Field(min_length=1)]
    """The recurrent stack, bottom to top: cells (`cell: lstm`...), and `{dropout: RATE}` / `{batch_norm: {}}` /
    `{spatial_dropout: RATE}` / `{layer_norm: {}}` / `{activation: NAME}` layers before, between or after them, and
    `{repeat_vector: N}` between an encoder's last output and a decoder, `{global_max_pool: {}}` /
    `{global_average_pool: {}}` over a sequence, `{conv1d: {filters: N, kernel_size: K}}` and `{max_pool: K}` /
    `{average_pool: K}` windows over the time axis, `{flatten: {}}` over a sequence of a fixed `seq_len`, and
    `{masking: {mask_value: V}}` (Keras's Masking, e.g. after the embedding: its mask replaces the embedding's)."""
    head: HeadField | None = None
    """Optional head: one Dense layer (a mapping), or a list of Dense layers, `{dropout: RATE}`, `{layer_norm: {}}`
    and `{activation: NAME}` entries (and `{batch_norm: {}}`) ending with the output Dense layer (and, after it,
    only `{activation: NAME}` entries). Omitted: the last recurrent layer's outputs are the outputs."""
    training: TrainingSpec | None = None
    """Optional training settings."""

    # -- derived facts -------------------------------------------------------------------------

    def stack(self) -> list[tuple[str, LayerSpec]]:
        """Every layer, bottom to top, with its effective name (the names used for weights and the summary)."""
        out: list[tuple[str, LayerSpec]] = []
        counters: dict[str, int] = {}

        def add(layer: LayerSpec, default: str | None = None) -> None:
            n = counters.get(layer.kind if not isinstance(layer, RecurrentLayer) else "recurrent", 0)
            counters[layer.kind if not isinstance(layer, RecurrentLayer) else "recurrent"] = n + 1
            name = getattr(layer, "name", None) or default or layer.default_name.format(n=n)
            out.append((name, layer))

        if self.input.mask_value is not None:
            add(MaskingSpec(masking={"mask_value": self.input.mask_value}), "masking")
        if self.embedding is not None:
            add(self.embedding)
        for entry in self.recurrent:
            add(entry)
        for k, entry in enumerate(self.head_layers):
            if isinstance(entry, DenseSpec):
                add(entry, "head" if isinstance(self.head, DenseSpec) else f"head_{k - self._head_dropouts_before(k)}")
            else:
                add(entry)
        return out

    def _head_dropouts_before(self, index: int) -> int:
        """Entries before ``index`` of the head list that are not Dense layers (``head_N`` counts Dense ones)."""
        return sum(not isinstance(e, DenseSpec) for e in self.head_layers[:index])

    def shapes(self) -> list[LayerShape]:
        """Every layer of :meth:`stack` with the shape it receives and the shape it gives: the one fold of the
        widths, steps and time axes over the stack (the summary, the backends' builders and the exporters read it;
        ``flatten``'s width is its input's steps times features)."""
        features = (self.input.vocab_size if self.embedding is not None else self.input.features) or 0
        steps, per_step = self.input.seq_len, True
        out: list[LayerShape] = []
        for name, layer in self.stack():
            width = layer.output_width(features, steps, per_step)
            after, after_steps = layer.output_per_step(per_step), layer.output_steps(steps)
            out.append(LayerShape(name, layer, features, steps, per_step, width, after_steps, after))
            features, steps, per_step = width, after_steps, after
        return out

    def layer_names(self) -> list[str]:
        """Effective layer names, bottom to top."""
        return [name for name, _ in self.stack()]

    @property
    def cells(self) -> list[RecurrentLayer]:
        """The recurrent layers of the stack (without dropout entries)."""
        return [entry for entry in self.recurrent if isinstance(entry, RecurrentLayer)]

    @property
    def head_layers(self) -> list[LayerSpec]:
        """The head as a list (empty without a head)."""
        if self.head is None:
            return []
        return [self.head] if isinstance(self.head, DenseSpec) else list(self.head)

    @property
    def output_layer(self) -> DenseSpec | None:
        """The Dense layer whose outputs are the model's outputs (None without a head)."""
        dense = [e for e in self.head_layers if isinstance(e, DenseSpec)]
        return dense[-1] if dense else None

    @property
    def output_activation_layer(self) -> tuple[str, LayerSpec] | None:
        """The layer whose activation makes the model's outputs, ``(name, layer)``: the last entry of the stack
        when it is a Dense layer or an ``activation`` entry (trailing ``activation: linear`` entries skipped, they
        change nothing). A trainer takes the logits before its activation, as Keras's losses do. None otherwise."""
        for name, layer in reversed(self.stack()):
            if isinstance(layer, ActivationSpec) and layer.activation == "linear":
                continue
            return (name, layer) if isinstance(layer, (DenseSpec, ActivationSpec)) else None
        return None

    @property
    def stateful(self) -> bool:
        """Whether a recurrent layer carries its states from one predicted batch to the next (``stateful: true``)."""
        return any(layer.stateful for layer in self.cells)

    @property
    def masked(self) -> bool:
        """Whether the model computes Keras's mask (``mask_zero`` or ``mask_value``)."""
        return any(layer.makes_mask() for _, layer in self.stack())

    @property
    def output_per_step(self) -> bool:
        """True when the model outputs one vector per time step (folded over the stack: a recurrent layer's
        ``return_sequences``, a ``repeat_vector``...)."""
        per_step = True
        for _, layer in self.stack():
            per_step = layer.output_per_step(per_step)
        return per_step

    def windows_fit(self, steps: int) -> bool:
        """Whether ``steps`` input steps leave at least one step after every layer (pooling and conv windows)."""
        current: int | None = steps
        for _, layer in self.stack():
            current = layer.output_steps(current)
            if current is not None and current < 1:
                return False
        return True

    def output_steps(self, steps: int | None) -> int | None:
        """The number of output steps for ``steps`` input steps (per-step outputs): the input's, or a
        ``repeat_vector``'s ``N``."""
        for _, layer in self.stack():
            steps = layer.output_steps(steps)
        return steps

    @property
    def output_masked(self) -> bool:
        """True when the outputs carry Keras's mask (per-step outputs of a masked model): losses skip padding."""
        mask = False
        for _, layer in self.stack():
            mask = (mask or layer.makes_mask()) and layer.keeps_mask()
        return mask

    @property
    def output_units(self) -> int:
        """Features of each output (folded over the stack by :meth:`shapes`)."""
        shapes = self.shapes()
        return shapes[-1].features if shapes else ((self.input.features or self.input.vocab_size) or 0)

    @property
    def output_activation(self) -> str:
        """Activation of the model's outputs: the output layer's, or without a head the last recurrent layer's
        (`linear` once a layer_norm follows it), folded over the stack from each kind's ``output_activation``."""
        activation = "linear"
        for _, layer in self.stack():
            activation = layer.output_activation(activation)
        return activation

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that :func:`rnnspec.load_spec` reads back to an equal spec."""
        return self.model_dump(mode="json", exclude_none=True)

    # -- cross-field checks ----------------------------------------------------------------------

    @model_validator(mode="after")
    def _check_model(self) -> ModelSpec:
        issues = list(_cross_field_issues(self))
        if issues:
            raise CrossFieldIssues(issues)
        return self


def _layer_label(spec: ModelSpec, index: int) -> str:
    names = dict(zip(map(id, (layer for _, layer in spec.stack())), spec.layer_names(), strict=True))
    layer = spec.recurrent[index]
    return f"recurrent[{index}] ({names[id(layer)]}, {getattr(layer, 'cell', layer.kind)})"


def _cross_field_issues(spec: ModelSpec):
    if spec.embedding is not None and spec.input.features is not None:
        yield CrossFieldIssue(
            path=("embedding",),
            message="an embedding needs token-id input, but the input is feature vectors",
            received=f"input.features: {spec.input.features} with an embedding",
            expected="`input.vocab_size` with an embedding, or `input.features` without one",
            fix="remove `embedding`, or replace `input.features` with `input.vocab_size`",
        )
    vocab, embedding = spec.input.vocab_size, spec.embedding
    if (
        embedding is not None
        and vocab is not None
        and embedding.padding_idx is not None
        and embedding.padding_idx >= vocab
    ):
        yield CrossFieldIssue(
            path=("embedding", "padding_idx"),
            message=f"padding_idx {embedding.padding_idx} is not an id of the vocabulary (ids are 0 to {vocab - 1})",
            received=f"padding_idx: {embedding.padding_idx}, input.vocab_size: {vocab}",
            expected=f"a padding id below {vocab}",
            fix="use the vocabulary's padding id (torchtext's `<pad>` is 1; Keras's is 0, `mask_zero: true`)",
        )
    if spec.input.vocab_size is not None and spec.embedding is None:
        yield CrossFieldIssue(
            path=("input", "vocab_size"),
            message="token-id input needs an embedding before the recurrent layers",
            received="input.vocab_size without an `embedding` section",
            expected="an `embedding: {output_dim: N}` section",
            fix="add `embedding: {output_dim: 32}`, or use `features: N` for one-hot or dense input",
        )
    cells = [i for i, entry in enumerate(spec.recurrent) if isinstance(entry, RecurrentLayer)]
    if not cells:
        kinds = {entry.kind for entry in spec.recurrent}
        dropout_only = kinds <= {"dropout", "spatial_dropout"}
        yield CrossFieldIssue(
            path=("recurrent",),
            message="the recurrent stack has dropout entries but no recurrent layer"
            if dropout_only
            else "the recurrent stack has no recurrent layer",
            received="only dropout / spatial_dropout entries"
            if dropout_only
            else f"only {' / '.join(sorted(kinds))} entries",
            expected="at least one entry with "
            + one_of([f"`cell: {CELL_TAGS[0]}`", *(f"`{t}`" for t in CELL_TAGS[1:])]),
            fix="add a recurrent layer, e.g. `- {cell: lstm, units: 32}`",
        )
        return
    per_step, vector_from = True, 0  # whether the entry's input has a time axis; the entry that took it away
    for i, entry in enumerate(spec.recurrent):
        if (
            isinstance(entry, RecurrentLayer)
            and not per_step
            and not isinstance(spec.recurrent[vector_from], RecurrentLayer)
        ):
            flat = spec.recurrent[vector_from].kind == "flatten"
            yield CrossFieldIssue(
                path=("recurrent", vector_from),
                message=f"{_layer_label(spec, vector_from)} {'flattens' if flat else 'pools'} the sequence into one "
                f"vector per sample, but {_layer_label(spec, i)} reads a sequence",
                received=f"{spec.recurrent[vector_from].entry_label()} before a recurrent layer",
                expected=f"{'flatten' if flat else 'global pooling'} after the last recurrent layer"
                + ("" if flat else " (or `{repeat_vector: N}` after it)"),
                fix=f"move recurrent[{vector_from}] after the last recurrent layer"
                + ("" if flat else ", or use `keepdims: true`"),
            )
        elif isinstance(entry, RecurrentLayer) and not per_step:
            yield CrossFieldIssue(
                path=("recurrent", vector_from, "return_sequences"),
                message=f"{_layer_label(spec, vector_from)} feeds {_layer_label(spec, i)}, so it must return the "
                "whole sequence",
                received="return_sequences: false",
                expected="return_sequences: true on every recurrent layer but the last (or a `{repeat_vector: N}` "
                "between an encoder's last output and a decoder)",
                fix=f"set `return_sequences: true` on recurrent[{vector_from}], or put `{{repeat_vector: N}}` "
                "between them to repeat its last output N times",
            )
        if entry.kind in ("global_max_pool", "global_average_pool") and not per_step:
            yield CrossFieldIssue(
                path=("recurrent", i, entry.kind),
                message=f"{entry.keras_class} pools a sequence over its steps, but its input has no time axis "
                "(the layer before it returns one vector per sample)",
                received=f"{entry.entry_label()} after a layer with return_sequences: false",
                expected="global pooling after a recurrent layer with return_sequences: true",
                fix="set `return_sequences: true` on the recurrent layer before it, or remove it",
            )
        if isinstance(entry, RepeatVectorSpec) and per_step:
            yield CrossFieldIssue(
                path=("recurrent", i, "repeat_vector"),
                message="RepeatVector repeats one vector per sample, but its input is a sequence (Keras's "
                "RepeatVector takes (batch, features) only)",
                received="repeat_vector after the input or after a layer with return_sequences: true",
                expected="repeat_vector after a recurrent layer with return_sequences: false",
                fix="set `return_sequences: false` on the recurrent layer before it, or remove it",
            )
        after = entry.output_per_step(per_step)
        if not after and (per_step or isinstance(entry, RecurrentLayer)):
            vector_from = i
        if isinstance(entry, MaskingSpec) and not per_step:
            yield CrossFieldIssue(
                path=("recurrent", i, "masking"),
                message="Masking masks the steps of a sequence, but its input has no time axis (the layer before "
                "it returns one vector per sample)",
                received=f"{entry.entry_label()} after a layer with return_sequences: false",
                expected="masking after the input, the embedding or a layer with return_sequences: true",
                fix="move the masking entry to the start of `recurrent`, or set `return_sequences: true` on the "
                "layer before it",
            )
        if isinstance(entry, SpatialDropoutSpec) and not per_step:
            yield CrossFieldIssue(
                path=("recurrent", i, "spatial_dropout"),
                message="SpatialDropout1D drops whole channels of a sequence, but its input has no time axis "
                "(the recurrent layer before it returns only its last output)",
                received="spatial_dropout after a layer with return_sequences: false",
                expected="spatial_dropout after the embedding or after a layer with return_sequences: true",
                fix=f"use `dropout: {entry.spatial_dropout}` here, or move it before that layer",
            )
        per_step = after
    stateful = [i for i, layer in enumerate(spec.recurrent) if getattr(layer, "stateful", False)]
    if stateful and spec.input.batch_size is None:
        yield CrossFieldIssue(
            path=("recurrent", stateful[0], "stateful"),
            message="a stateful layer keeps one state per sample from batch to batch, so the batch size must be "
            "fixed (Keras needs `batch_shape` on the Input)",
            received=f"stateful: true on recurrent[{stateful[0]}] without input.batch_size",
            expected="`input: {batch_size: N}` with a stateful layer",
            fix="add `batch_size: N` to `input` (the number of sequences predicted side by side)",
        )
    if not stateful and spec.input.batch_size is not None:
        yield CrossFieldIssue(
            path=("input", "batch_size"),
            message="input.batch_size fixes the batch for stateful layers only, and no recurrent layer is stateful",
            received=f"input.batch_size: {spec.input.batch_size} without a `stateful: true` layer",
            expected="batch_size with a `stateful: true` recurrent layer",
            fix="remove `batch_size` from `input` (training's batch size is `training.batch_size`), or set "
            "`stateful: true` on a recurrent layer",
        )
    for i, layer in enumerate(spec.recurrent):
        if isinstance(layer, RecurrentLayer) and layer.bidirectional and layer.go_backwards:
            yield CrossFieldIssue(
                path=("recurrent", i, "go_backwards"),
                message="a bidirectional layer already runs one copy backwards; Keras's Bidirectional rejects "
                "go_backwards on the wrapped layer",
                received="bidirectional: true with go_backwards: true",
                expected="go_backwards: false (the default) on a bidirectional layer",
                fix=f"remove `go_backwards` from recurrent[{i}]",
            )
    yield from _window_issues(spec)
    if isinstance(spec.head, list):
        yield from _head_list_issues(spec.head)
    names = spec.layer_names()
    seen: set[str] = set()
    for name in names:
        if name in seen:
            yield CrossFieldIssue(
                path=_path_of_name(spec, name),
                message=f"layer name {name!r} is used twice; weights are named by layer",
                received=f"two layers named {name!r}",
                expected="unique layer names",
                fix="rename one of them, or drop `name` to get the default",
            )
        seen.add(name)
    if spec.training is not None:
        yield from _loss_issues(spec)


def _head_list_issues(head: list[Any]):
    dense = [k for k, entry in enumerate(head) if isinstance(entry, DenseSpec)]
    output = dense[-1] if dense else -1
    after = [k for k, entry in enumerate(head) if k > output and not isinstance(entry, ActivationSpec)]
    if not dense or after:
        last = after[-1] if after else len(head) - 1
        yield CrossFieldIssue(
            path=("head", last),
            message="the last entry of a head list is the output layer and must be a Dense layer (only "
            "`{activation: NAME}` entries may follow it)",
            received=f"{head[last].entry_label()} last" if dense else f"no Dense entry ({head[last].entry_label()})",
            expected="a Dense entry `{units: N, activation: ...}` last",
            fix="add the output layer after it, e.g. `- {units: 1, activation: sigmoid}`",
        )
    for k, entry in enumerate(head[: max(output, 0)]):
        if isinstance(entry, DenseSpec) and entry.activation in ("softmax", "log_softmax"):
            yield CrossFieldIssue(
                path=("head", k, "activation"),
                message=f"{entry.activation} belongs on the output layer only; a hidden Dense layer takes an "
                "element-wise activation",
                received=f"activation: {entry.activation} on a hidden Dense layer",
                expected=f"one of: {', '.join(ACTIVATIONS)}",
                fix=f"use `activation: relu` here, and {entry.activation} on the last entry",
            )


def _window_issues(spec: ModelSpec):
    """Layers that slide a window over the time axis (``max_pool``, ``average_pool``, ``conv1d``): they need a
    sequence, at least one whole window when ``seq_len`` is fixed, and no mask (Keras's pooling, Conv1D and Flatten
    layers drop it); ``flatten`` needs a fixed number of steps."""
    index = {id(entry): i for i, entry in enumerate(spec.recurrent)}
    per_step, masked, steps = True, False, spec.input.seq_len
    mask_from, mask_what, mask_readers = "", "", []  # who made the mask, its setting, the layers that read it
    mask_same = True  # whether removing the mask setting leaves the values unchanged (Masking(0) zeroes zeros)
    for name, layer in spec.stack():
        i = index.get(id(layer))
        if i is not None and layer.kind == "flatten" and per_step and steps is None:
            yield CrossFieldIssue(
                path=("recurrent", i, "flatten"),
                message="Flatten joins every step's features into one vector, so the number of steps must be fixed "
                "(Keras's Flatten needs a known time axis: the layer after it has steps x features inputs)",
                received="flatten on a sequence of variable length (no input.seq_len"
                + (")" if spec.input.seq_len is None else ", or a layer before it changes it)"),
                expected="`input: {seq_len: N}` with a flatten entry",
                fix="add `seq_len: N` to `input`, or use `{global_average_pool: {}}` / `{global_max_pool: {}}`, "
                "which take any length",
            )
        if i is not None and layer.drops_mask_unread and per_step and masked:
            key, what = layer.entry_key or layer.kind, layer.keras_class
            read = f"{mask_from}'s mask reaches it after {mask_readers[0]} read it" if mask_readers else ""
            yield CrossFieldIssue(
                path=("recurrent", i, key),
                message=f"Keras's {what} does not support masking: it drops the mask (with a warning) and "
                "computes over the padded steps as if they were data, so no layer after it sees the padding",
                received=f"{key} on a sequence masked by {mask_from}" + (f" ({read})" if read else ""),
                expected=f"{key} on an unmasked sequence",
                fix=f"remove {mask_what} (Keras's model computes the same without it: the mask is dropped "
                "before any layer reads it)"
                if not mask_readers and mask_same
                else f"move the {key} entry before {(mask_readers or [mask_from])[0]}, or remove {mask_what}",
            )
        if i is not None and getattr(layer, "slides_window", False):
            key, what = layer.entry_key or layer.kind, layer.keras_class
            if not per_step:
                yield CrossFieldIssue(
                    path=("recurrent", i, key),
                    message=f"{what} slides a window over the time axis, but its input has no time axis (the "
                    "recurrent layer before it returns only its last output)",
                    received=f"{key} after a layer with return_sequences: false",
                    expected=f"{key} after the input, the embedding or a layer with return_sequences: true",
                    fix="set `return_sequences: true` on the recurrent layer before it, or move it before that layer",
                )
            elif not masked and steps is not None and layer.output_steps(steps) < 1:
                yield CrossFieldIssue(
                    path=("recurrent", i, key),
                    message=f"{what} has no whole window in {steps} steps, so its output would be empty (Keras "
                    "refuses the negative dimension)",
                    received=f"{steps} input steps, {layer.entry_label()}",
                    expected="a window no longer than the steps that reach it",
                    fix="use a smaller window, `padding: same`, or a longer `input.seq_len`",
                )
        if layer.makes_mask():
            mask_from = f"the {name} layer"
            mask_what = (
                ("`mask_zero: true`" if getattr(layer, "mask_zero", False) else f"`padding_idx: {layer.padding_idx}`")
                if layer.kind == "embedding"
                else f"recurrent[{i}] (masking)"
                if i is not None
                else "`input.mask_value`"
            )
            mask_readers = []
            mask_same = layer.kind == "embedding" or getattr(layer, "mask_value", 0.0) == 0.0
        elif masked and layer.reads_mask:
            mask_readers.append(f"recurrent[{i}] ({name})" if i is not None else name)
        masked = layer.makes_mask() or (masked and layer.keeps_mask())
        per_step = layer.output_per_step(per_step)
        steps = layer.output_steps(steps)
        if steps is not None and steps < 1:
            steps = None  # reported above; the layers after it are not judged on it


def _path_of_name(spec: ModelSpec, name: str) -> tuple[str | int, ...]:
    hits: list[tuple[str | int, ...]] = []
    if spec.embedding is not None and spec.embedding.name == name:
        hits.append(("embedding", "name"))
    hits += [("recurrent", i, "name") for i, layer in enumerate(spec.recurrent) if layer.name == name]
    if isinstance(spec.head, DenseSpec) and spec.head.name == name:
        hits.append(("head", "name"))
    elif isinstance(spec.head, list):
        hits += [("head", k, "name") for k, entry in enumerate(spec.head) if entry.name == name]
    return hits[-1] if hits else ()


def _log_softmax_issues(name: str, from_logits: bool, units: int, received: str):
    """A cross-entropy on log_softmax outputs (log-probabilities, PyTorch's taggers): exact only as NLLLoss, which is
    a categorical loss with ``from_logits: true`` (log_softmax of log-probabilities is themselves, so Keras's loss
    on them is -log p of the label, and so is the gradient)."""
    path = ("training", "loss")
    if units < 2:
        yield CrossFieldIssue(
            path=path,
            message=f"{name} needs a distribution over classes, but a log_softmax over {units} unit is always 0.0",
            received=received,
            expected="a log_softmax over one unit per class (>= 2)",
            fix="set the output layer's `units` to the number of classes",
        )
    elif name == "binary_crossentropy":
        yield CrossFieldIssue(
            path=path,
            message="binary_crossentropy scores independent yes/no probabilities, but log_softmax outputs are the "
            f"log-probabilities of {units} exclusive classes; Keras would read them as probabilities (clipped to "
            "[1e-7, 1 - 1e-7]) or, with from_logits, as logits of independent outputs: neither is PyTorch's NLLLoss",
            received=received,
            expected="a categorical loss with from_logits: true on log_softmax outputs (PyTorch's NLLLoss)",
            fix="use `loss: {name: sparse_categorical_crossentropy, from_logits: true}` (integer labels) or "
            "`categorical_crossentropy` (one-hot labels) with `from_logits: true`",
        )
    elif not from_logits:
        yield CrossFieldIssue(
            path=path,
            message=f"{name} without from_logits reads the outputs as probabilities and takes their log after "
            "clipping them to [1e-7, 1 - 1e-7]; log_softmax outputs are log-probabilities (<= 0), all clipped to "
            "1e-7: a constant loss with no gradient. PyTorch's NLLLoss on log_softmax outputs is the same loss with "
            "from_logits: true (log_softmax of log-probabilities is themselves)",
            received=received,
            expected="from_logits: true with log_softmax outputs",
            fix=f"use `loss: {{name: {name}, from_logits: true}}` (or a softmax head without from_logits)",
        )


def _loss_issues(spec: ModelSpec):
    assert spec.training is not None
    loss = spec.training.loss
    act = spec.output_activation
    units = spec.output_units
    where = "the head" if spec.output_layer is not None else f"the last recurrent layer ({act})"
    received = f"loss {loss.name}{' (from_logits)' if loss.from_logits else ''} on {where}: {units} unit(s), {act}"
    path = ("training", "loss")
    if loss.name in REGRESSION_LOSSES:
        return
    if loss.from_logits and act in ("sigmoid", "softmax"):
        yield CrossFieldIssue(
            path=path,
            message="from_logits: true, but the outputs already go through " + act,
            received=received,
            expected="from_logits: true only when the outputs are raw scores (linear head, or no head)",
            fix=f"drop `from_logits`, or set the head's activation to linear (the loss then applies {act})",
        )
        return
    if act == "log_softmax":
        yield from _log_softmax_issues(loss.name, loss.from_logits, units, received)
        return
    if loss.name == "binary_crossentropy":
        if act == "softmax":
            yield CrossFieldIssue(
                path=path,
                message=f"binary_crossentropy scores independent yes/no outputs, but the head is a softmax over "
                f"{units} classes",
                received=received,
                expected="binary_crossentropy with sigmoid outputs; a softmax head with a categorical loss",
                fix="use `loss: sparse_categorical_crossentropy` (integer labels) or "
                "`categorical_crossentropy` (one-hot labels)",
            )
        elif act != "sigmoid" and not loss.from_logits:
            yield CrossFieldIssue(
                path=path,
                message=f"binary_crossentropy needs probabilities, but the outputs are {act}",
                received=received,
                expected="a sigmoid head, or `from_logits: true` on raw scores",
                fix="set the head's `activation: sigmoid`, or use `loss: {name: binary_crossentropy, "
                "from_logits: true}`",
            )
    else:  # sparse_categorical / categorical
        if act == "sigmoid" or units < 2:
            yield CrossFieldIssue(
                path=path,
                message=f"{loss.name} needs a distribution over classes, but the outputs are {units} {act} unit(s)",
                received=received,
                expected="a softmax head with one unit per class (>= 2), or raw scores with from_logits: true",
                fix="for a yes/no label use `loss: binary_crossentropy` with one sigmoid unit; for classes use "
                "`head: {units: N_CLASSES, activation: softmax}`",
            )
        elif act != "softmax" and not loss.from_logits:
            yield CrossFieldIssue(
                path=path,
                message=f"{loss.name} needs probabilities, but the outputs are {act}",
                received=received,
                expected="a softmax head, or `from_logits: true` on raw scores",
                fix=f"set the head's `activation: softmax`, or use `loss: {{name: {loss.name}, from_logits: true}}`",
            )
