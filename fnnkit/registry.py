"""Picking from a registry, written once: a name, a comma list, a list, or ``all``.

Variants, backends, export formats and datasets are each one dict from name to object; users
type names. ``lookup`` and ``pick`` turn typed names into those objects, so every registry accepts
the same spellings and an unknown name is refused the same way — including a typo hidden in
``all,F``, which is an error, not silently dropped. The small fixed vocabularies (devices, ``--isa``,
scenarios, activations, datasets to fetch) check their names where they are defined; every miss,
here or there, gets the same message from ``errors.unknown_choice``, listing the valid names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from fnnkit.errors import unknown_choice

T = TypeVar("T")
ALL = "all"
DEVICES = ("cpu", "cuda")  # where a model runs; every command and backend speaks of devices by these names
DEVICE_CHOICES = ("auto", *DEVICES)  # what --device accepts: "auto" is the GPU when there is one


def split_names(names: str | Iterable[str]) -> list[str]:
    """``"a, b"``, ``["a", "b,c"]`` -> ``["a", "b", "c"]`` (blanks dropped, order kept)."""
    if isinstance(names, str):
        names = [names]
    return [part.strip() for name in names for part in str(name).split(",") if part.strip()]


def lookup(registry: Mapping[str, T], name: str, kind: str, normalize: Callable[[str], str] = str.lower) -> T:
    """One entry by name; an unknown name raises a ConfigError listing the valid names."""
    try:
        return registry[normalize(name.strip())]
    except KeyError:
        raise unknown_choice(kind, name, list(registry)) from None


def pick(
    registry: Mapping[str, T],
    names: str | Iterable[str],
    kind: str,
    normalize: Callable[[str], str] = str.lower,
    everything: Callable[[], Iterable[T]] | None = None,
) -> list[T]:
    """Entries named by ``names`` in registry order, no repeats.

    ``all`` adds ``everything()`` (default: every entry); every other name must exist, with or
    without ``all`` beside it.
    """
    parts = split_names(names)
    if not parts:
        raise unknown_choice(kind, "", [*registry, ALL])
    unknown = [part for part in parts if part.lower() != ALL and normalize(part) not in registry]
    if unknown:  # here ``all`` is a valid spelling too, so the message lists it
        raise unknown_choice(kind, unknown[0], [*registry, ALL])
    wanted = [registry[normalize(part)] for part in parts if part.lower() != ALL]
    if any(part.lower() == ALL for part in parts):
        wanted += list(everything() if everything is not None else registry.values())
    chosen = {id(item) for item in wanted}
    return [item for item in registry.values() if id(item) in chosen]
