"""The one module that builds any variant: ``FeedForward(spec)`` (the table is ``fnnkit.variants``), and the
one activation table every use of an activation reads (the network's layer, the hand-written SGD step)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from fnnkit.variants import ACTIVATION_NAMES, VariantSpec, get_spec


@dataclass(frozen=True)
class Activation:
    module: type[nn.Module]  # the network's layer
    inplace: Callable[[torch.Tensor], torch.Tensor]  # the same function, in place: fnnkit.sgd's forward pass
    derivative: Callable[[torch.Tensor], torch.Tensor]  # written through the activation's output a


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(nn.Sigmoid, torch.sigmoid_, lambda a: a * (1 - a)),
    "tanh": Activation(nn.Tanh, torch.tanh_, lambda a: 1 - a * a),
    "relu": Activation(nn.ReLU, torch.relu_, lambda a: a > 0),
}
assert tuple(ACTIVATIONS) == ACTIVATION_NAMES  # one vocabulary: the table validates names, this maps them


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
                layers.append(ACTIVATIONS[spec.activation].module())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def build(name: str | VariantSpec) -> FeedForward:
    """A freshly initialised network for a variant name (PyTorch's default Linear init)."""
    spec = name if isinstance(name, VariantSpec) else get_spec(name)
    return FeedForward(spec)
