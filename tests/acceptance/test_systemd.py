"""systemd/reelfs-mount@.service: the unit passes `systemd-analyze verify`, and the
commands it runs mount and unmount an archive as the unit says.

`systemd-analyze verify` checks that each Exec*= binary exists, and the unit
names /usr/local/bin/reelfs: the test verifies a copy whose binary path points
at the built binary, and a copy pointing at a missing binary must fail (the text
check asserts the original names /usr/local/bin/reelfs).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import MOUNT_TIMEOUT, PROCESS_EXIT_TIMEOUT, force_unmount, is_mounted, wait_until

INSTALLED_BIN = "/usr/local/bin/reelfs"


@pytest.fixture(scope="module")
def unit_text(repo_root) -> str:
    return (repo_root / "systemd" / "reelfs-mount@.service").read_text()


def _directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for each directive of a unit file."""
    out, section = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        k, v = line.split("=", 1)
        out.append((section, k.strip(), v.strip()))
    return out


def _get(text, section, key) -> list[str]:
    return [v for s, k, v in _directives(text) if s == section and k == key]


def test_unit_says_what_the_issue_asks(unit_text):
    assert _get(unit_text, "Service", "EnvironmentFile") == ["/etc/reelfs/%i.env"]
    assert _get(unit_text, "Service", "Type") in (["simple"], ["notify"])
    assert _get(unit_text, "Service", "Restart") == ["on-failure"]
    assert "local-fs.target" in " ".join(_get(unit_text, "Unit", "After"))
    (start,) = _get(unit_text, "Service", "ExecStart")
    argv = start.split()
    assert argv[:2] == [INSTALLED_BIN, "mount"]
    assert "--foreground" in argv and "$REELFS_MOUNT_OPTS" in argv
    assert "${ARCHIVE}" in argv and "${MOUNTPOINT}" in argv
    stops = _get(unit_text, "Service", "ExecStop")
    assert any(re.match(rf"-?{re.escape(INSTALLED_BIN)} umount \$\{{MOUNTPOINT\}}$", s) for s in stops), stops
    assert _get(unit_text, "Install", "WantedBy") == ["multi-user.target"]


def test_systemd_analyze_verify(unit_text, reelfs, tmp_path):
    assert shutil.which("systemd-analyze"), "systemd-analyze missing: run scripts/install-deps"
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    template = unit_dir / "reelfs-mount@.service"
    template.write_text(unit_text.replace(INSTALLED_BIN, str(reelfs.binary.resolve())))
    instance = unit_dir / "reelfs-mount@archive.service"
    instance.symlink_to(template.name)
    for unit in (template, instance):
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                           timeout=60, cwd=unit_dir)
        # verify exits 0 on mere warnings (an unknown key, a bad value): treat any
        # line about our unit as a failure too.
        ours = [l for l in p.stderr.splitlines() if "reelfs-mount@" in l]
        assert p.returncode == 0 and not ours, f"systemd-analyze verify {unit.name}:\n{p.stdout}\n{p.stderr}"
    # And verify does check the binary (so the pass above means something): the unit
    # pointed at a binary that does not exist fails, naming it. Whether this machine
    # has /usr/local/bin/reelfs does not matter.
    missing = tmp_path / "not-installed" / "reelfs"
    absent = tmp_path / "absent"
    absent.mkdir()
    (absent / "reelfs-mount@.service").write_text(unit_text.replace(INSTALLED_BIN, str(missing)))
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", str(absent / "reelfs-mount@.service")],
                       capture_output=True, text=True, timeout=60, cwd=absent)
    assert p.returncode != 0 and str(missing) in p.stderr, p.stderr


def _env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v
    return env


def _expand(cmd: str, env: dict[str, str]) -> list[str]:
    """systemd's rules for Exec lines: ${VAR} is one word, $VAR splits on spaces."""
    out = []
    for word in shlex.split(cmd.lstrip("-")):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            out.extend(env.get(m.group(1), "").split())
        else:
            out.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda mm: env.get(mm.group(1), ""), word))
    return out


def test_env_example_and_unit_commands_mount_and_unmount(unit_text, repo_root, reelfs, tmp_path):
    """Run ExecStart/ExecStop as systemd would, with the example settings pointed
    at a temporary archive."""
    example = _env_file(repo_root / "systemd" / "reelfs.env.example")
    assert {"ARCHIVE", "MOUNTPOINT", "REELFS_MOUNT_OPTS"} <= set(example)
    src = tmp_path / "card"
    src.mkdir()
    (src / "clip.bin").write_bytes(os.urandom(100_000))
    archive, mp = tmp_path / "my archive", tmp_path / "mnt point"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, src)
    mp.mkdir()
    env = dict(example, ARCHIVE=str(archive), MOUNTPOINT=str(mp))
    # --allow-other needs user_allow_other in /etc/fuse.conf unless root; keep the rest.
    if os.geteuid() != 0:
        env["REELFS_MOUNT_OPTS"] = env["REELFS_MOUNT_OPTS"].replace("--allow-other", "")

    def argv(line):
        a = _expand(line, env)
        return [str(reelfs.binary) if x == INSTALLED_BIN else x for x in a]

    (start,) = _get(unit_text, "Service", "ExecStart")
    proc = subprocess.Popen(argv(start), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, **env))
    try:
        assert wait_until(lambda: is_mounted(mp) or proc.poll() is not None, MOUNT_TIMEOUT), "not mounted"
        assert proc.poll() is None, proc.communicate()
        assert (mp / "main" / "card" / "clip.bin").read_bytes() == (src / "clip.bin").read_bytes()
        for stop in _get(unit_text, "Service", "ExecStop"):
            p = subprocess.run(argv(stop), capture_output=True, text=True, timeout=MOUNT_TIMEOUT)
            assert p.returncode == 0 or stop.startswith("-"), (stop, p.stderr)
        out, err = proc.communicate(timeout=PROCESS_EXIT_TIMEOUT)
        assert proc.returncode == 0, err  # a clean stop, so Restart=on-failure does not fire
        assert not is_mounted(mp)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=PROCESS_EXIT_TIMEOUT)
        force_unmount(mp)
