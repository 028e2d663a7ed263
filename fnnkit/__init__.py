"""fnnkit: train the five classic MNIST feedforward networks, export them, benchmark backends.

``import fnnkit`` stays light: torch and the rest load when a function needs them.
"""

from __future__ import annotations

from fnnkit.env import check_torch_floor

check_torch_floor()

__all__ = ["load", "__version__"]
__version__ = "0.1.0"


def load(variant: str = "C", dataset: str | None = None, artifacts: str = "artifacts", device: str = "cpu"):
    """The trained ``nn.Module`` for ``variant``, verified against its recorded sha256.

    ``variant`` may also be a path to a variant folder (``artifacts/mnist/C``).
    """
    from pathlib import Path

    from fnnkit.paths import user_path
    from fnnkit.store import find_variant_dir, load_trained
    from fnnkit.variants import get_spec

    if Path(variant).is_dir():
        folder = user_path(variant, "variant folder")
    else:  # a Python caller's boundary, as the CLI's: the root is made absolute here, once
        folder = find_variant_dir(user_path(artifacts, "artifacts", folder=True), get_spec(variant).name, dataset)
    model, _card = load_trained(folder, device)
    return model
