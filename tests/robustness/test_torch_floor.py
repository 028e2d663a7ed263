"""Case 12: a torch older than 2.6 (which fixed a ``weights_only`` bypass) is refused at import and
at CLI start, before torch itself is imported.

The old torch is simulated with a fake ``torch-2.5.1.dist-info`` placed first on the path, so
``importlib.metadata`` reports it while the real (new) torch stays importable: the test proves
the check reads the installed version, not whatever happens to import.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from fnnkit.env import MIN_TORCH, check_torch_floor

from .helpers import REPO, child_env, run_python


@pytest.mark.parametrize("version", ["2.5.1", "2.5.1+cu124", "2.0.0", "1.13.1"])
def test_old_torch_is_refused(version):
    with pytest.raises(ImportError, match=r"fnnkit needs torch>=2\.6") as info:
        check_torch_floor(version)
    assert f"this environment has torch {version}" in str(info.value) and "pip install" in str(info.value)


@pytest.mark.parametrize("version", ["2.6.0", "2.14.1+cu130", "3.0.0a0"])
def test_supported_torch_passes(version):
    assert MIN_TORCH == (2, 6)
    check_torch_floor(version)


@pytest.fixture
def old_torch_env(tmp_path) -> dict[str, str]:
    info = tmp_path / "fake" / "torch-2.5.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.5.1\n")
    return child_env(PYTHONPATH=f"{info.parent}:{REPO}")


def test_import_refuses_before_torch_loads(old_torch_env):
    result = run_python(
        """
        import importlib.metadata, sys
        assert importlib.metadata.version("torch") == "2.5.1", "the fake dist-info is not first"
        try:
            import fnnkit
        except ImportError as exc:
            print(f"refused: {exc}")
            print(f"torch imported: {'torch' in sys.modules}")
        """,
        env=old_torch_env,
    )
    assert result.returncode == 0, result.stderr
    assert "refused: fnnkit needs torch>=2.6" in result.stdout and "torch 2.5.1" in result.stdout
    assert "torch imported: False" in result.stdout


def test_cli_refuses_at_start(old_torch_env):
    result = subprocess.run([sys.executable, "-m", "fnnkit", "info"], capture_output=True, text=True,
                            env=old_torch_env, cwd=REPO, timeout=60)  # fmt: skip
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: fnnkit needs torch>=2.6") and "torch 2.5.1" in last, result.stderr
