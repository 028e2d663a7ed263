"""The five classic MNIST feedforward variants as data, and one module that builds any of them.

The table is torch-free (a process that only runs an ONNX file names variants too); ``FeedForward``,
``build`` and the activation table need torch and live in ``fnnkit.network``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fnnkit.errors import unknown_choice
from fnnkit.registry import lookup, pick
from fnnkit.shapes import INPUT_DIM, NUM_CLASSES  # the data's shape decides the networks' ends

ACTIVATION_NAMES = (
    "sigmoid",
    "tanh",
    "relu",
)  # fnnkit.network.ACTIVATIONS: module, derivative


@dataclass(frozen=True)
class VariantSpec:
    """One network shape: ``hidden_layers`` layers of ``hidden_dim`` units, one activation."""

    name: str
    activation: str
    hidden_layers: int
    hidden_dim: int = 100  # the tutorial's width

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATION_NAMES:
            raise unknown_choice("activation", self.activation, list(ACTIVATION_NAMES))
        if self.hidden_layers < 1 or self.hidden_dim < 1:
            raise ValueError(f"variant {self.name}: hidden_layers and hidden_dim must be >= 1")

    @property
    def layer_dims(self) -> list[tuple[int, int]]:
        """(in, out) of every Linear layer, input to logits."""
        dims = [INPUT_DIM] + [self.hidden_dim] * self.hidden_layers + [NUM_CLASSES]
        return list(zip(dims[:-1], dims[1:], strict=True))

    @property
    def linear_names(self) -> list[str]:
        """Every Linear layer's state-dict prefix, input to logits, as ``fnnkit.network.FeedForward`` names it:
        its ``layers`` hold Linear, activation, ..., Linear, so Linear k is entry 2k. Torch-free readers of the
        weights (``safetensors_vet``, ``fnnkit.reference``) find the tensors by these names."""
        return [f"layers.{2 * k}" for k in range(len(self.layer_dims))]

    @property
    def num_parameters(self) -> int:
        return sum(i * o + o for i, o in self.layer_dims)

    @property
    def flops_per_sample(self) -> int:
        """Forward multiply-adds counted as 2 FLOPs; activations and bias adds are noise."""
        return sum(2 * i * o for i, o in self.layer_dims)

    @property
    def description(self) -> str:
        return f"{self.hidden_layers} hidden {self.activation} x{self.hidden_dim}"


VARIANTS: dict[str, VariantSpec] = {
    spec.name: spec
    for spec in (
        VariantSpec("A", "sigmoid", 1),
        VariantSpec("B", "tanh", 1),
        VariantSpec("C", "relu", 1),
        VariantSpec("D", "relu", 2),
        VariantSpec("E", "relu", 3),
    )
}


def get_spec(name: str) -> VariantSpec:
    return lookup(VARIANTS, name, "variant", str.upper)


def resolve_variants(names: str | list[str]) -> list[VariantSpec]:
    """``"all"``, ``"A"``, ``"A,C"`` or a list of names -> specs, in table order, no repeats."""
    return pick(VARIANTS, names, "variant", str.upper)
