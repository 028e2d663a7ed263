"""A package's public names imported on first use: ``fnnkit --help`` and torch-free runtimes stay light.

``__getattr__, __dir__ = lazy_names(__name__, {"name": "module.path", ...})`` in a package's
``__init__``: a name is imported from its module the first time it is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, where: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name]), name)

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__
