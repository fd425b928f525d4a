"""Fixtures for the Python API tests: real archives made through the API, the
footage of scripts/gen-test-media, and the `reelfs` binary to compare against
(its `--json` is what every result's `to_dict()` must equal)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import reelfs

REPO_ROOT = Path(__file__).resolve().parents[2]
MEDIA_DIR = REPO_ROOT / ".cache" / "test-media"
REELFS_BIN = Path(os.environ.get("REELFS_BIN", REPO_ROOT / "target" / "release" / "reelfs"))

PRORES = "A001C003_prores_2398.mov"  # 23.976, TC 01:00:00:00, reel A001, 48 frames
DF_CLIP = "H008_2997df_min10.mov"  # 29.97 DF


@pytest.fixture(scope="session")
def media_dir() -> Path:
    proc = subprocess.run([str(REPO_ROOT / "scripts" / "gen-test-media"), str(MEDIA_DIR)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"scripts/gen-test-media failed:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    return MEDIA_DIR


class Cli:
    """The reelfs binary, for comparing the API with what the CLI says."""

    def __init__(self, binary: Path):
        if not binary.exists():
            pytest.fail(f"{binary} not found: build it with `cargo build --release` (or set REELFS_BIN)", pytrace=False)
        self.binary = binary

    def run(self, *args, rc=0):
        p = subprocess.run([str(self.binary), *map(str, args)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert p.returncode == rc, f"reelfs {' '.join(map(str, args))} exited {p.returncode}:\n{p.stderr}"
        return p

    def json(self, *args, rc=0):
        return json.loads(self.run(*args, "--json", rc=rc).stdout)


@pytest.fixture(scope="session")
def cli() -> Cli:
    return Cli(REELFS_BIN)


@pytest.fixture(scope="module")
def day01(tmp_path_factory, media_dir):
    """An archive with two clips and a WAV ingested into main/Day01 (read-only use)."""
    root = tmp_path_factory.mktemp("day01")
    a = reelfs.Archive.init(root / "archive")
    card = root / "A001"
    card.mkdir()
    for name in (PRORES, DF_CLIP, "D004_bwf.wav"):
        shutil.copy2(media_dir / name, card / name)
    a.ingest([card], to="Day01", message="Day 01")
    return a


@pytest.fixture
def archive(tmp_path) -> reelfs.Archive:
    return reelfs.Archive.init(tmp_path / "archive")
