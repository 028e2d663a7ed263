"""Downloads from torchvision's mirrors, md5-checked as torchvision publishes them.

Offline or firewalled machines must give up fast: every connect/read has a short timeout,
and a name-resolution failure ends the attempt at once.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from fnnkit.errors import DataError

DOWNLOAD_TIMEOUT_S = 10.0  # per connect/read
Progress = Callable[[str, int, "int | None"], None]  # (file name, bytes so far, total or None)


def resources_of(torchvision_class: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(mirrors, [(file name, md5)]) as torchvision publishes them: one list, kept upstream."""
    import torchvision.datasets  # heavy; only a download needs it

    cls = getattr(torchvision.datasets, torchvision_class)
    return list(cls.mirrors), [tuple(r) for r in cls.resources]


def describe(exc: BaseException) -> str:
    """One line for a failed fetch: the resolver's or server's own words, not a traceback."""
    reason = getattr(exc, "reason", None)
    if isinstance(exc, urllib.error.HTTPError) or reason is None:
        return f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return f"{type(reason).__name__}: {reason}".replace("\n", " ")


def fetch(url: str, target: Path, md5: str, progress: Progress | None) -> None:
    """Stream one URL into ``target``, hashing as it goes; a wrong md5 is a DataError."""
    digest = hashlib.md5(usedforsecurity=False)
    request = urllib.request.Request(url, headers={"User-Agent": "fnnkit"})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response, open(target, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        done = 0
        while chunk := response.read(1 << 16):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(target.name, done, total)
    if digest.hexdigest() != md5:
        raise DataError(f"downloaded {url}: md5 {digest.hexdigest()} does not match the published {md5}")


class FetchError(DataError):
    """A route failed; ``reason`` is the first failure in a few words (for `auto`'s one-line note)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def fetch_any(mirrors: list[str], name: str, target: Path, md5: str, progress: Progress | None) -> str:
    """Try each mirror in turn; returns the URL that worked."""
    failures = []
    for mirror in mirrors:
        url = mirror + name
        try:
            fetch(url, target, md5, progress)
            return url
        except DataError as exc:
            failures.append((url, str(exc)))
        except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError and timeouts are OSErrors
            failures.append((url, describe(exc)))
    raise FetchError("; ".join(f"{url}: {why}" for url, why in failures), failures[0][1])


def download_into(torchvision_class: str, temp: Path, progress: Progress | None) -> tuple[list[str], str]:
    """Every file of the dataset into ``temp``, md5-checked; returns (file names, mirror used)."""
    mirrors, files = resources_of(torchvision_class)
    used = [fetch_any(mirrors, name, temp / name, md5, progress) for name, md5 in files]
    return [name for name, _ in files], used[0].rsplit("/", 1)[0] + "/"
