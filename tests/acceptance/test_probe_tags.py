"""Metadata tags a file carries are facts to show, whatever their bytes: a
Broadcast WAV whose LIST/INFO title is not UTF-8 (Latin-1 from an old recorder,
or damage) must not make the archive's listing unreadable. FFmpeg hands such a
tag over byte for byte; reelfs stores it with the invalid bytes replaced (U+FFFD)."""

import math
import struct


def _wav_with_title(path, title: bytes):
    rate, n = 48000, 4800
    pcm = b"".join(struct.pack("<h", int(1000 * math.sin(i / 10))) for i in range(n))
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    title += b"\x00"
    info = b"INFO" + b"INAM" + struct.pack("<I", len(title)) + title + (b"\x00" if len(title) % 2 else b"")
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"LIST" + struct.pack("<I", len(info)) + info
            + b"data" + struct.pack("<I", len(pcm)) + pcm)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_a_tag_that_is_not_utf8_is_shown_not_fatal(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "sound"
    src.mkdir()
    _wav_with_title(src / "A001_T01.wav", b"Sc\xe8ne 12 \xff\xfe")
    reelfs.ok("ingest", tmp_archive, src)
    listing = reelfs.ok("ls", tmp_archive, "main/sound", "-l").stdout
    assert "A001_T01.wav" in listing and "pcm_s16le" in listing, listing
    facts = reelfs.json("info", tmp_archive, "main/sound/A001_T01.wav")
    assert facts["media"]["format_tags"]["title"] == "Sc\ufffdne 12 \ufffd\ufffd", facts["media"]
    reelfs.check_deep(tmp_archive)
