"""systemd/reelfs-serve@.service: passes `systemd-analyze verify`, and the
command it runs, with the settings of systemd/reelfs.env.example, serves."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess

import pytest
import requests

from test_systemd import INSTALLED_BIN, _env_file, _expand, _get

UNIT = "reelfs-serve@.service"


@pytest.fixture(scope="module")
def unit_text(repo_root) -> str:
    return (repo_root / "systemd" / UNIT).read_text()


def test_unit_runs_reelfs_serve_from_the_instance_settings(unit_text):
    assert _get(unit_text, "Service", "EnvironmentFile") == ["/etc/reelfs/%i.env"]
    assert _get(unit_text, "Service", "Restart") == ["on-failure"]
    (start,) = _get(unit_text, "Service", "ExecStart")
    assert start.split() == [INSTALLED_BIN, "serve", "${ARCHIVE}", "$REELFS_SERVE_OPTS"]
    assert _get(unit_text, "Install", "WantedBy") == ["multi-user.target"]


def test_systemd_analyze_verify(unit_text, reelfs, tmp_path):
    assert shutil.which("systemd-analyze"), "systemd-analyze missing: run scripts/install-deps"
    unit = tmp_path / UNIT
    unit.write_text(unit_text.replace(INSTALLED_BIN, str(reelfs.binary.resolve())))
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    ours = [l for l in p.stderr.splitlines() if "reelfs-serve@" in l]
    assert p.returncode == 0 and not ours, f"{p.stdout}\n{p.stderr}"


def test_the_env_example_settings_serve_the_archive(unit_text, repo_root, reelfs, tmp_path):
    env = _env_file(repo_root / "systemd" / "reelfs.env.example")
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    env["ARCHIVE"] = str(archive)
    # The example's port may be taken on a shared machine: same options, port 0.
    env["REELFS_SERVE_OPTS"] = re.sub(r"--listen \S+", "--listen 127.0.0.1:0", env["REELFS_SERVE_OPTS"])
    (start,) = _get(unit_text, "Service", "ExecStart")
    argv = _expand(start, env)
    argv[0] = str(reelfs.binary)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://(127\.0\.0\.1:\d+)/", line)
        assert m, (line, proc.stderr.read() if proc.poll() is not None else "")
        r = requests.get(f"http://{m.group(1)}/", headers={"Accept": "application/json"})
        assert r.status_code == 200 and [e["name"] for e in r.json()["entries"]] == ["main"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
