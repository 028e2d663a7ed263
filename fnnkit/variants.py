"""The five classic MNIST feedforward variants as data, and one module that builds any of them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fnnkit.data.idx import INPUT_DIM, NUM_CLASSES  # the data's shape decides the networks' ends
from fnnkit.errors import unknown_choice
from fnnkit.registry import lookup, pick

ACTIVATIONS: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


@dataclass(frozen=True)
class VariantSpec:
    """One network shape: ``hidden_layers`` layers of ``hidden_dim`` units, one activation."""

    name: str
    activation: str
    hidden_layers: int
    hidden_dim: int = 100  # the tutorial's width

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise unknown_choice("activation", self.activation, list(ACTIVATIONS))
        if self.hidden_layers < 1 or self.hidden_dim < 1:
            raise ValueError(f"variant {self.name}: hidden_layers and hidden_dim must be >= 1")

    @property
    def layer_dims(self) -> list[tuple[int, int]]:
        """(in, out) of every Linear layer, input to logits."""
        dims = [INPUT_DIM] + [self.hidden_dim] * self.hidden_layers + [NUM_CLASSES]
        return list(zip(dims[:-1], dims[1:], strict=True))

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


class FeedForward(nn.Module):
    """Linear -> activation, ``hidden_layers`` times, then a Linear to the logits.

    Takes flattened float32 pixels in [0, 1], shape [batch, 784]; returns logits [batch, 10].
    """

    def __init__(self, spec: VariantSpec) -> None:
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        for index, (fan_in, fan_out) in enumerate(spec.layer_dims):
            layers.append(nn.Linear(fan_in, fan_out))
            if index < spec.hidden_layers:
                layers.append(ACTIVATIONS[spec.activation]())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def build(name: str | VariantSpec) -> FeedForward:
    """A freshly initialised network for a variant name (PyTorch's default Linear init)."""
    spec = name if isinstance(name, VariantSpec) else get_spec(name)
    return FeedForward(spec)
