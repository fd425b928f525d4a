"""(The coverage work of issue 17: CLI behaviour no acceptance test checked.)
A hand-edited reelfs.toml with a value out of range is refused by every command
with the setting, its allowed range and the file named (fastcdc would assert
on such sizes: config.rs checks them first); the archive is left as it was and
works again once the value is put back."""

import pytest

EDITS = [
    ("min_size = 1048576", "min_size = 16", "chunker.min_size 16 must be 64..=1048576"),
    ("avg_size = 4194304", "avg_size = 100", "chunker.avg_size 100 must be 256..=4194304"),
    ("max_size = 16777216", "max_size = 99999999", "chunker.max_size 99999999 must be 1024..=16777216"),
    ("min_size = 1048576", "min_size = 1048000", None),  # valid alone: the check is on the order
    ("level = 3", "level = 25", "compression.level must be 1..=19"),
    ("target_size = 536870912", "target_size = 4096", "packs.target_size must be at least 1 MiB"),
    ('remux_limit = "10G"', 'remux_limit = "1.5G"', "is not a size: write bytes or a number with K, M, G or T"),
    ("\n[packs]\n", "\n[packs\n", "invalid config: TOML parse error"),
]


@pytest.mark.parametrize("old,new,says", EDITS, ids=[e[2] or "valid" for e in EDITS])
def test_an_out_of_range_setting_is_refused_with_its_range(reelfs, tmp_archive, tmp_path, old, new, says):
    card = tmp_path / "card"
    card.mkdir()
    (card / "a.txt").write_bytes(b"take 1\n")
    reelfs.ok("ingest", tmp_archive, card, "--to", "Day01")
    toml = tmp_archive / "reelfs.toml"
    original = toml.read_text()
    assert old in original
    toml.write_text(original.replace(old, new, 1))
    if says is None:
        # min 1048000 <= avg <= max: accepted, and the archive reads as before.
        assert reelfs.ok("cat", tmp_archive, "main/Day01/card/a.txt").stdout == "take 1\n"
        return
    for args in (("ls", tmp_archive, "main"), ("ingest", tmp_archive, card, "--to", "Day02")):
        p = reelfs(*args)
        assert p.returncode != 0, p.stdout
        assert says in p.stderr and str(toml) in p.stderr, p.stderr
        assert "panicked" not in p.stderr
    toml.write_text(original)
    assert reelfs.json("ls", tmp_archive, "main") and reelfs.ok("cat", tmp_archive, "main/Day01/card/a.txt").stdout == "take 1\n"
    reelfs.check_deep(tmp_archive)
