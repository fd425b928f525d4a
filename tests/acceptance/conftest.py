"""Shared fixtures for the reelfs acceptance tests.

Add new fixtures here (e.g. `reelfs_bin` -> REPO_ROOT / "target/release/reelfs",
temporary archives). Keep each one small and session-scoped where it is costly.
"""

import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]  # tests/acceptance/ -> repo
MEDIA_DIR = REPO_ROOT / ".cache" / "test-media"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def media_dir() -> Path:
    """Test footage from scripts/gen-test-media (see scripts/test-media.md).

    Generated once per session into <repo>/.cache/test-media; the script's own
    cache makes this near-instant when the files are already there. Treat the
    files as read-only: copy them before modifying.
    """
    proc = subprocess.run(
        [str(REPO_ROOT / "scripts" / "gen-test-media"), str(MEDIA_DIR)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"scripts/gen-test-media failed (exit {proc.returncode}):\n"
            f"{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )
    return MEDIA_DIR
