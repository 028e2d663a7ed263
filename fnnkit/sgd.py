"""One SGD step of a FeedForward network written out: the tutorial's mathematics, fewer operations.

``loss.backward()`` + ``optim.SGD.step()`` on a batch of 100 spends more time dispatching
about forty small operations than multiplying matrices. For an MLP with cross-entropy the
gradients have a closed form, so the step is a dozen operations, updating the weights in
place with ``addmm_``: per layer ``W -= lr * g^T a / B`` and ``b -= lr * sum(g) / B``, with
``g`` the softmax minus the one-hot labels at the top and ``(g W) * act'(a)`` below.
It computes the same gradient as autograd (tests/test_train.py checks it against autograd);
the rounding differs in the last bits, the accuracy does not.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fnnkit.network import ACTIVATIONS, FeedForward

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sgd_step(model: FeedForward, learning_rate: float) -> Step:
    """A function ``step(x, y) -> mean cross-entropy before the update`` that updates ``model`` in place.

    Call it under ``torch.no_grad()``; ``x`` is float32 [B, 784], ``y`` int64 [B].
    """
    layers = [(m.weight.data, m.bias.data) for m in model.layers if isinstance(m, torch.nn.Linear)]
    activation = ACTIVATIONS[model.spec.activation]
    activate, derivative = activation.inplace, activation.derivative

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        outputs = [x]  # the input of every Linear layer
        for weight, bias in layers[:-1]:
            outputs.append(activate(torch.addmm(bias, outputs[-1], weight.t())))
        weight, bias = layers[-1]
        log_p = torch.log_softmax(torch.addmm(bias, outputs[-1], weight.t()), dim=1)
        picked = log_p.gather(1, y.unsqueeze(1))
        loss = -picked.mean()
        grad = log_p.exp_().scatter_add_(1, y.unsqueeze(1), torch.full_like(picked, -1.0))  # softmax - one-hot
        alpha = -learning_rate / x.shape[0]  # the mean over the batch folded into the step size
        for index in range(len(layers) - 1, -1, -1):
            weight, bias = layers[index]
            below = outputs[index]
            grad_below = grad @ weight if index > 0 else None  # before this layer's update
            weight.addmm_(grad.t(), below, alpha=alpha)
            bias.add_(grad.sum(0), alpha=alpha)
            if grad_below is not None:
                grad = grad_below.mul_(derivative(below))
        return loss

    return step
