"""The records fnnkit writes beside a model, as pydantic models: each field's type and bounds stated once.

``ModelCard`` is ``model.json`` (what was trained, on what, how well; the weights' sha256) and
``ExportEntry`` one format's record in ``export.json`` (the file, its sha256, what it was made
from, its parity with eager). Strict, frozen, finite, and nothing unknown: a record is read
through the bounded reader first (``io.read_json``), then ``check`` turns a ValidationError into
one ArtifactError line naming the file, the field and the command that re-creates it. The JSON
Schemas in docs/schemas/ are generated from these models (``python -m fnnkit.schemas``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fnnkit.errors import ArtifactError
from fnnkit.store.io import MAX_EXPORT_BYTES
from fnnkit.store.names import EXPORT_SCHEMA, MODEL_SCHEMA, WEIGHTS_FILE

HIDDEN_LAYERS_MAX, HIDDEN_DIM_MAX = 16, 2048  # bounds on any card, checked before anything is built from it
INPUT_DIM, NUM_CLASSES = 784, 10  # every variant: 28x28 pixels in, ten logits out

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]  # a folder or file name, never a path
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Percent = Annotated[float, Field(ge=0, le=100)]
Seconds = Annotated[float, Field(ge=0, lt=1e7)]
Count = Annotated[int, Field(ge=1, le=10**9)]
Text = Annotated[str, Field(max_length=4096)]
Versions = Annotated[dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=128)] | int | None],
                     Field(max_length=64)]  # fmt: skip


class Record(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class VariantRecord(Record):
    name: Name
    activation: Annotated[str, Field(max_length=32)]
    hidden_layers: int = Field(ge=1, le=HIDDEN_LAYERS_MAX)
    hidden_dim: int = Field(ge=1, le=HIDDEN_DIM_MAX)
    description: Text = ""

    @model_validator(mode="after")
    def _in_the_table(self) -> VariantRecord:
        from fnnkit.variants import VARIANTS

        spec = VARIANTS.get(self.name)
        if spec is None:
            raise ValueError(f"variant.name {self.name[:20]!r} is not one of {', '.join(VARIANTS)}")
        if (self.activation, self.hidden_layers, self.hidden_dim) != (
            spec.activation,
            spec.hidden_layers,
            spec.hidden_dim,
        ):
            raise ValueError(
                f"variant {self.name} is {spec.description}, but the card says "
                f"{self.hidden_layers} hidden {self.activation[:20]} x{self.hidden_dim}"
            )
        return self

    @property
    def num_parameters(self) -> int:
        d = self.hidden_dim
        return INPUT_DIM * d + d + (self.hidden_layers - 1) * (d * d + d) + d * NUM_CLASSES + NUM_CLASSES


class DatasetRecord(Record):
    name: Name
    source: Text = ""
    train_size: Count | None = None
    test_size: Count | None = None
    classes: list[Annotated[str, Field(max_length=64)]] | None = Field(None, min_length=2, max_length=NUM_CLASSES)
    note: Text = ""
    official: bool | None = None


class Preprocessing(Record):
    input: Text
    input_name: Text
    input_shape: list[str | int] = Field(max_length=4)
    output_name: Text
    output_shape: list[str | int] = Field(max_length=4)


class Hyperparameters(Record):
    """What the run was given; ``TrainConfig`` bounds these where they are chosen."""

    iterations: int
    batch_size: int
    learning_rate: float
    eval_every: int
    seed: int
    optimizer: Text
    loss: Text


class EvalPoint(Record):
    iteration: int = Field(ge=0, le=10**9)
    train_loss: float = Field(ge=0)
    test_accuracy: Percent


class Weights(Record):
    file: Literal[WEIGHTS_FILE]
    sha256: Sha256
    bytes: int | None = Field(None, ge=1)  # at most max_weights_bytes of the variant: ModelCard checks it


class ModelCard(Record):
    """``model.json``: written by ``store.save_trained``, read by every loader and by verify."""

    schema_: Literal[MODEL_SCHEMA] = Field(alias="schema")
    variant: VariantRecord
    parameters: Count | None = None
    dataset: DatasetRecord
    preprocessing: Preprocessing | None = None
    hyperparameters: Hyperparameters | None = None
    history: list[EvalPoint] = Field(max_length=100_000)
    test_accuracy: Percent
    best_test_accuracy: Percent | None = None
    train_seconds: Seconds | None = None
    samples_per_second: float | None = Field(None, ge=0)
    device: Annotated[str, Field(max_length=64)] | None = None
    threads: int | None = Field(None, ge=1, le=65536)
    seed: int | None = None
    versions: Versions | None = None
    created: Text | None = None
    weights: Weights

    @model_validator(mode="after")
    def _weights_fit_the_variant(self) -> ModelCard:
        limit = max_weights_bytes(self.variant.num_parameters)
        if self.weights.bytes is not None and self.weights.bytes > limit:
            raise ValueError(f"weights.bytes must be at most {limit} for variant {self.variant.name}")
        return self


class ParityRecord(Record):
    """``export.parity.Parity`` as recorded: only a file that passed is ever recorded."""

    samples: int = Field(ge=1)
    max_abs_diff: float = Field(ge=0)
    agreement: Percent
    accuracy: Percent
    eager_accuracy: Percent
    accuracy_delta: float = Field(ge=-100, le=100)
    criterion: Text
    passed: Literal[True]
    seconds: Seconds


class ExportEntry(Record):
    """One format's record in ``export.json``; its ``file`` must be the name fnnkit gives that format
    (``Artifact.entry`` checks it against the format)."""

    file: Annotated[str, Field(max_length=64)]
    sha256: Sha256
    bytes: int = Field(ge=1, le=MAX_EXPORT_BYTES)
    export_seconds: Seconds
    device: Literal["cpu", "cuda"]
    isa: Annotated[str, Field(max_length=32)] | None = None  # a CPU build of a .pt2: the instruction set it needs
    versions: Versions
    source_sha256: Sha256  # the weights it was made from
    parity: ParityRecord
    created: Text | None = None
    vetted: Sha256 | None = None  # an ONNX file vetted at export: this machine's stamp (fnnkit.formats.vetting)


class ExportManifest(Record):
    """``export.json``: one entry per format (and device), each checked on its own when used
    (``Artifact.entry``), so one damaged entry leaves the others usable."""

    schema_: Literal[EXPORT_SCHEMA] = Field(alias="schema")
    variant: Name
    dataset: Name
    formats: dict[Annotated[str, Field(max_length=64)], Any] = Field(max_length=256)


def max_weights_bytes(num_parameters: int) -> int:
    """The most bytes a safetensors file of a variant may have: its float32 parameters plus a header, doubled,
    so a file of the wrong dtype still reaches the header check, which names the dtype."""
    return 2 * (4 * num_parameters + (1 << 16))


R = TypeVar("R", bound=Record)


def check(model: type[R], payload: Any, where: str, hint: str) -> R:
    """``payload`` as ``model``, or one ArtifactError line: ``where``, the first wrong field, ``hint``."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ArtifactError(f"{where} {describe(exc)}; {hint}") from None


def describe(exc: ValidationError) -> str:
    """The first problem of a ValidationError in a few words (all missing fields at once)."""
    errors = exc.errors(include_url=False)
    missing = [_dotted(e["loc"]) for e in errors if e["type"] == "missing"]
    if missing:
        return f"lacks field(s) {', '.join(missing)}"
    error = errors[0]
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error":  # our own validators name their field
        return message
    if error["type"] == "extra_forbidden":
        return f"has field {_dotted(error['loc'])}, which no fnnkit record holds"
    value = error.get("input")
    found = type(value).__name__ if isinstance(value, dict | list) else repr(value)[:40]
    if not error["loc"]:
        return f"is not a JSON object (found {found})"
    return f"field {_dotted(error['loc'])}: {message[:1].lower()}{message[1:]}, found {found}"


def _dotted(loc: tuple) -> str:
    return ".".join("schema" if part == "schema_" else str(part) for part in loc)
