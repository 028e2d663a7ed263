"""Torch floor: a torch older than ``MIN_TORCH`` (2.6 fixed a ``weights_only`` bypass) is refused at
import and at CLI start, before torch itself is imported.

Versions are derived from ``MIN_TORCH``, so raising the floor needs no edit here. The old torch
is simulated with a fake ``torch-<old>.dist-info`` placed first on the path, so
``importlib.metadata`` reports it while the real (new) torch stays importable: the test proves
the check reads the installed version, not whatever happens to import.
"""

from __future__ import annotations

import importlib.metadata
import re

import pytest
from clitools import run_fnnkit

from fnnkit.env import MIN_TORCH, check_torch_floor, parse_version

from .helpers import REPO, child_env, run_python

MAJOR, MINOR = MIN_TORCH
FLOOR = f"{MAJOR}.{MINOR}"
OLD = f"{MAJOR}.{MINOR - 1}.1" if MINOR else f"{MAJOR - 1}.99.0"  # the release just below the floor
REFUSED = re.escape(f"fnnkit needs torch>={FLOOR}")


@pytest.mark.parametrize("version", [OLD, f"{OLD}+cu124", f"{MAJOR}.0.0" if MINOR else OLD, "1.13.1"])
def test_old_torch_is_refused(version):
    with pytest.raises(ImportError, match=REFUSED) as info:
        check_torch_floor(version)
    assert f"this environment has torch {version}" in str(info.value) and "pip install" in str(info.value)


@pytest.mark.parametrize("version", [f"{FLOOR}.0", f"{FLOOR}.0+cu130", f"{MAJOR + 1}.0.0a0"])
def test_supported_torch_passes(version):
    check_torch_floor(version)


def test_the_installed_torch_passes_and_is_what_the_check_reads():
    installed = importlib.metadata.version("torch")
    assert parse_version(installed)[:2] >= MIN_TORCH
    check_torch_floor()  # reads the same installed version


@pytest.fixture
def old_torch_env(tmp_path) -> dict[str, str]:
    info = tmp_path / "fake" / f"torch-{OLD}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: torch\nVersion: {OLD}\n")
    return child_env(PYTHONPATH=f"{info.parent}:{REPO}")


def test_import_refuses_before_torch_loads(old_torch_env):
    result = run_python(
        f"""
        import importlib.metadata, sys
        assert importlib.metadata.version("torch") == "{OLD}", "the fake dist-info is not first"
        try:
            import fnnkit
        except ImportError as exc:
            print(f"refused: {{exc}}")
            print(f"torch imported: {{'torch' in sys.modules}}")
        """,
        env=old_torch_env,
    )
    assert result.returncode == 0, result.stderr
    assert f"refused: fnnkit needs torch>={FLOOR}" in result.stdout and f"torch {OLD}" in result.stdout
    assert "torch imported: False" in result.stdout


def test_cli_refuses_at_start(old_torch_env):
    """A real process: the refusal happens before the CLI exists, so it ends as Python's ImportError line."""
    result = run_fnnkit("info", env=old_torch_env, cwd=REPO, timeout=60)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ImportError: fnnkit needs torch>={FLOOR}") and f"torch {OLD}" in last, result.stderr
