"""`reelfs serve` reads and verifies only the 256 KiB outboard blocks a
response's first piece returns, also in a zstd-compressed chunk (decoded only
as far as the range reaches): the first byte does not wait for a whole chunk,
and bytes are still never served unverified.

The clip is real audio made by ffmpeg (a sine tone in a WAV, which the ingest
stores zstd-compressed); the damage is a flipped byte in the pack itself.
"""

import sqlite3
import subprocess

import httpx
import requests

from test_serve import Server

RECORD_HEADER_LEN = 44  # src/archive/pack.rs
CODEC_ZSTD = 1


def make_tone_wav(path):
    """~5.5 MiB of 24-bit stereo sine at 48 kHz: a whole chunk or two, compressible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
                    "-ac", "2", "-t", "20", "-c:a", "pcm_s24le", str(path)], check=True)
    return path


def first_chunk(reelfs, archive, branch_path):
    """(pack file, payload offset, stored length, raw length, codec) of the chunk at the file's offset 0."""
    info = reelfs.json("info", archive, branch_path)
    blob = bytes.fromhex(info["content_hash"])
    with sqlite3.connect(f"file:{archive / 'catalog.db'}?mode=ro", uri=True) as db:
        (chunk,) = db.execute("SELECT chunk FROM extents WHERE blob = ? AND file_offset = 0", (blob,)).fetchone()
        pack, offset, stored, raw, codec = db.execute(
            "SELECT pack, offset, stored_len, raw_len, codec FROM chunks WHERE hash = ?", (chunk,)).fetchone()
        (name,) = db.execute("SELECT name FROM packs WHERE id = ?", (pack,)).fetchone()
    return archive / "packs" / name, offset + RECORD_HEADER_LEN, stored, raw, codec


def ingest_tone(reelfs, archive, tmp_path):
    wav = make_tone_wav(tmp_path / "card" / "D001_tone.wav")
    reelfs.ok("ingest", archive, tmp_path / "card", "--to", "Day01")
    path = "main/Day01/card/D001_tone.wav"
    pack, payload, stored, raw, codec = first_chunk(reelfs, archive, path)
    assert codec == CODEC_ZSTD, "the tone's first chunk was not stored compressed: this test needs one"
    assert raw > 4 * (256 << 10), f"first chunk of {raw} bytes: too small to have blocks to skip"
    return wav.read_bytes(), path, (pack, payload, stored, raw)


def test_ranges_in_a_compressed_chunk_are_exact_at_every_offset(reelfs, tmp_archive, tmp_path):
    want, path, (_, _, _, raw) = ingest_tone(reelfs, tmp_archive, tmp_path)
    s = Server(reelfs, tmp_archive, logdir=tmp_path)
    try:
        block = 256 << 10
        # Small ranges are answered by their first piece alone: each is decoded
        # only as far as it reaches, never loaded whole, so every one of these
        # goes through the partial decode; they start at a block's start, inside
        # one, across a block boundary, at the chunk's end and across it.
        for start, length in [(0, 1), (0, 4096), (1000, 70000), (block - 10, 20), (block, block), (3 * block + 7, 5000),
                              (raw - 100, 100), (raw - 50, 200), (len(want) - 300, 300)]:
            r = requests.get(s.url(path), headers={"Range": f"bytes={start}-{start + length - 1}"})
            assert r.status_code == 206, (start, length, r.status_code)
            assert r.content == want[start:start + length], f"bytes {start}+{length} differ from the file's"
        # A range of many pieces (the first decoded partly, the rest through the
        # chunk cache) and the whole file: the same bytes as the file.
        r = requests.get(s.url(path), headers={"Range": f"bytes=123-{3 << 20}"})
        assert r.status_code == 206 and r.content == want[123:(3 << 20) + 1]
        r = requests.get(s.url(path))
        assert r.status_code == 200 and r.content == want
    finally:
        s.stop()


def test_a_damaged_block_of_a_compressed_chunk_is_refused_while_its_first_block_still_reads(reelfs, tmp_archive, tmp_path):
    want, path, (pack, payload, stored, raw) = ingest_tone(reelfs, tmp_archive, tmp_path)
    # Damage late in the compressed stream: the decoded bytes it yields are far
    # past the first block (a zstd frame decodes front to back, so the first
    # block's bytes never depend on it).
    at = payload + stored * 3 // 4
    with open(pack, "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0x40]))
    s = Server(reelfs, tmp_archive, logdir=tmp_path)
    try:
        # The first block is verified on its own and served exactly.
        r = requests.get(s.url(path), headers={"Range": "bytes=0-65535"})
        assert r.status_code == 206 and r.content == want[:65536], "an undamaged block of a damaged chunk was refused"
        # The chunk's last bytes come after the damage: never served.
        got = bytearray()
        cut = False
        try:
            with httpx.Client() as c, c.stream("GET", s.url(path), headers={"Range": f"bytes={raw - 4096}-{raw - 1}"}) as r:
                assert r.status_code == 206
                for piece in r.iter_raw(1 << 12):
                    got += piece
        except (httpx.RemoteProtocolError, httpx.ReadError):
            cut = True
        assert cut and len(got) < 4096, f"the damaged range was not cut ({len(got)} bytes sent)"
        assert bytes(got) == want[raw - 4096:raw - 4096 + len(got)], "wrong bytes were sent before the cut"
        assert path in s.log(), "the log does not name the damaged file"
        assert s.alive()
    finally:
        s.stop()
