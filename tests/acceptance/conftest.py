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


# ---- the reelfs binary, driven as a user would ----------------------------------

import json
import os

REELFS_BIN = Path(os.environ.get("REELFS_BIN", REPO_ROOT / "target" / "release" / "reelfs"))


class Reelfs:
    """Runs `$REELFS_BIN ARGS...` and returns the subprocess.CompletedProcess.

    `reelfs(...)` never raises on a non-zero exit (tests assert on it);
    `reelfs.ok(...)` asserts exit 0 and shows stderr when it is not;
    `reelfs.json(...)` runs with `--json` appended and parses stdout.
    """

    def __init__(self, binary: Path):
        self.binary = binary

    def argv(self, args):
        return [str(self.binary), *(str(a) for a in args)]

    def __call__(self, *args, timeout=600, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(self.argv(args), timeout=timeout, **kw)

    def ok(self, *args, **kw) -> subprocess.CompletedProcess:
        proc = self(*args, **kw)
        assert proc.returncode == 0, (
            f"reelfs {' '.join(map(str, args))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def json(self, *args, expect_rc=0, **kw):
        proc = self(*args, "--json", **kw)
        assert proc.returncode == expect_rc, (
            f"reelfs {' '.join(map(str, args))} --json exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return json.loads(proc.stdout)

    def popen(self, *args, **kw) -> subprocess.Popen:
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("text", True)
        return subprocess.Popen(self.argv(args), **kw)

    def check_deep(self, archive):
        """`reelfs check --deep` must pass: the archive is valid."""
        return self.ok("check", archive, "--deep")


@pytest.fixture(scope="session")
def reelfs() -> Reelfs:
    if not REELFS_BIN.is_file():
        pytest.fail(f"{REELFS_BIN} not found: run `cargo build --release` first "
                    "(or set REELFS_BIN)", pytrace=False)
    return Reelfs(REELFS_BIN)


@pytest.fixture
def tmp_archive(tmp_path, reelfs) -> Path:
    """A fresh, empty archive (branch main) in the test's temporary folder."""
    path = tmp_path / "archive"
    reelfs.ok("init", path)
    return path


@pytest.fixture(scope="session")
def media_archive(tmp_path_factory, reelfs, media_dir) -> Path:
    """One archive holding all the test footage under main/Day01/test-media.

    Session-scoped: tests that only read may share it; tests that write or
    damage must use `tmp_archive`.
    """
    path = tmp_path_factory.mktemp("media-archive") / "archive"
    reelfs.ok("init", path)
    reelfs.ok("ingest", path, media_dir, "--to", "Day01", "-m", "Day 01 cards")
    return path


# ---- a reelfs mount, unmounted at the end of the test --------------------------------

from helpers import Mount


@pytest.fixture
def mount(reelfs, tmp_path):
    """mount(archive, *flags, mp=None, logdir=None, env=None) -> Mount, already mounted.

    The one mount of the acceptance suite (helpers.Mount; use it directly as a `with`
    block where a mount must end inside a test, or for a module-wide mount). By default
    the n-th mount of a test is at tmp_path/mount<n>/mnt and the daemon logs in
    tmp_path/mount<n>. Every mount is unmounted, and its daemon gone, at teardown."""
    made = []

    def do(archive, *flags, mp=None, logdir=None, env=None) -> Mount:
        if mp is None:
            base = tmp_path / f"mount{len(made)}"
            mp, logdir = base / "mnt", logdir or base
        m = Mount(reelfs, archive, mp, *flags, logdir=logdir, env=env)
        m.__enter__()
        made.append(m)
        return m

    yield do
    failed = []
    for m in reversed(made):
        try:
            m.__exit__(None, None, None)
        except BaseException as e:  # pytest.fail is a BaseException: tear down the rest first
            failed.append(e)
    if failed:
        raise failed[0]
