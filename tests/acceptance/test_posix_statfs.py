"""statfs on the mount reports the free space of the disk holding the archive
(issue 12), so `df`, Finder and Explorer over SMB see room to copy into a
branch: it used to report 0 blocks. Checked with os.statvfs and `df` as a user
would, against the archive's own folder."""

import os
import re
import subprocess

from helpers import Mount
from test_posix_smb import smb_share  # noqa: F401 (a fixture: smbd sharing a folder)


def df_row(path):
    """`df -P -B1 PATH`: (size, used, available) in bytes."""
    out = subprocess.run(["df", "-P", "-B1", str(path)], capture_output=True, text=True, check=True).stdout
    fields = out.splitlines()[-1].split()
    return int(fields[1]), int(fields[2]), int(fields[3])


def test_df_on_the_mount_shows_the_archive_disk(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    reelfs.ok("ingest", tmp_archive, src, "-m", "card")
    with Mount(reelfs, tmp_archive, tmp_path / "mnt") as m:
        disk, mnt = os.statvfs(tmp_archive), os.statvfs(m.mp)
        assert mnt.f_blocks * mnt.f_frsize == disk.f_blocks * disk.f_frsize
        assert mnt.f_bavail > 0 and mnt.f_bfree >= mnt.f_bavail
        # Other work on the machine writes meanwhile: free space agrees to 5% of the disk.
        assert abs(mnt.f_bavail * mnt.f_frsize - disk.f_bavail * disk.f_frsize) <= disk.f_blocks * disk.f_frsize // 20
        assert mnt.f_files == disk.f_files and mnt.f_namemax == 255
        size, _, avail = df_row(m.mp)
        dsize, _, davail = df_row(tmp_archive)
        assert size == dsize and avail > 0
        assert abs(avail - davail) <= dsize // 20


def test_an_smb_share_of_the_mount_reports_the_free_space(reelfs, tmp_archive, tmp_path, smb_share):
    """What Finder asks before a copy: smbclient's `du` shows the share's blocks
    available (it said "0 blocks available")."""
    src = tmp_path / "card"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    reelfs.ok("ingest", tmp_archive, src, "-m", "card")
    with Mount(reelfs, tmp_archive, tmp_path / "mnt") as m:
        run = smb_share(m.mp)
        out = run("du")
        run.stop()
    found = re.search(r"(\d+) blocks of size (\d+)\. (\d+) blocks available", out)
    assert found, out
    total, size, avail = (int(x) for x in found.groups())
    disk = os.statvfs(tmp_archive)
    assert avail > 0, out
    assert abs(total * size - disk.f_blocks * disk.f_frsize) <= disk.f_blocks * disk.f_frsize // 20, out
