"""How ingest reads its source (issue 16, ingest row): one thread reads a window and
then cuts it into chunks, so with a cold source the disk idled while a window was cut.
Ingest now tells the kernel the file is read sequentially and asks for the next window
while it cuts this one (posix_fadvise WILLNEED), as strace shows."""

import re
import subprocess

from helpers import b3, write_random

MiB = 1 << 20


def test_ingest_asks_for_the_next_window_of_the_source_while_it_cuts(reelfs, tmp_archive, tmp_path):
    # Small chunks (a 2 MiB window) so a small file spans several windows.
    toml = tmp_archive / "reelfs.toml"
    text = toml.read_text()
    text = re.sub(r"min_size = \d+", "min_size = 65536", text)
    text = re.sub(r"avg_size = \d+", "avg_size = 262144", text)
    text = re.sub(r"max_size = \d+", "max_size = 1048576", text)
    toml.write_text(text)
    src = tmp_path / "card" / "A001C001.mov"
    write_random(src, 7 * MiB)
    log = tmp_path / "ingest.strace"
    p = subprocess.run(["strace", "-f", "-e", "trace=fadvise64", "-o", str(log),
                        reelfs.binary, "ingest", str(tmp_archive), str(src.parent), "-m", "card"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    calls = log.read_text().splitlines()
    assert any("POSIX_FADV_SEQUENTIAL" in c for c in calls), "\n".join(calls)
    ahead = [c for c in calls if "POSIX_FADV_WILLNEED" in c and c.rstrip().endswith("= 0")]
    # 7 MiB through a 2 MiB window: at least three refills asked for ahead of time.
    assert len(ahead) >= 3, "\n".join(calls)
    out = tmp_path / "restored.mov"
    reelfs.ok("restore", tmp_archive, "main/card/A001C001.mov", out)
    assert b3(out) == b3(src)
    reelfs.check_deep(tmp_archive)
