"""Typed errors with messages a user can act on.

Every error raised for a user mistake or a damaged file is a ``FnnkitError``; the CLI
prints its message and exits non-zero instead of showing a traceback. Each message says
what is wrong, which file or value, and what to do about it.
"""

from __future__ import annotations


class FnnkitError(Exception):
    """Base of every error fnnkit reports to a user (exit code 2 in the CLI)."""

    exit_code = 2


class ConfigError(FnnkitError, ValueError):
    """A flag or argument has a value fnnkit cannot use (unknown name, bad number)."""


class DataError(FnnkitError):
    """A dataset file is missing, malformed or cannot be fetched."""


class ArtifactError(FnnkitError):
    """An artifact is missing, unreadable or has an unexpected schema."""


class IntegrityError(ArtifactError):
    """A file's sha256 does not match the value recorded when fnnkit wrote it."""


class WorseModel(ArtifactError):
    """A finished training scored at chance level, or far below the model it would replace: that one is kept."""


class ExportError(FnnkitError):
    """An export failed or produced a file that does not validate."""


class ParityError(ExportError):
    """An exported model disagrees with eager PyTorch beyond the allowed tolerance."""


class BackendUnavailable(FnnkitError):
    """A backend cannot run on the requested device here (missing provider, no GPU)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: the command stopped cleanly (exit code 130, as shells expect).

    A KeyboardInterrupt, deliberately not an FnnkitError nor an Exception: no ``except Exception``
    or ``except FnnkitError`` wrapper anywhere (ours or a library's) can turn a stop into an error
    and carry on with the next variant.
    """

    exit_code = 130


def unknown_choice(kind: str, value: object, valid: list[str] | tuple[str, ...]) -> ConfigError:
    """The one message for every registry lookup miss: names the valid choices."""
    return ConfigError(f"unknown {kind} {value!r}; valid choices: {', '.join(valid)}")
