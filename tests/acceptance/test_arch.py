"""`reelfs info` names what the mount shows, through the same resolver as
`cat` and `slice` (src/view/): a slice `clip@IN-OUT`, a proxy under `.proxy/`,
an old version under `.history/` or `branch@commit`, and it refuses the paths
the resolver refuses with the resolver's advice."""
import datetime
import shutil

CLIP = "A001C003_prores_2398.mov"


def _history_name(commit):
    t = datetime.datetime.fromtimestamp(commit["time_ns"] // 1_000_000_000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H.%M.%S") + "_" + commit["commit"][:8]


def _one_clip(reelfs, tmp_archive, tmp_path, media_dir):
    card = tmp_path / "card"
    card.mkdir()
    shutil.copy(media_dir / CLIP, card / CLIP)
    reelfs.ok("ingest", tmp_archive, card, "-m", "one clip")
    return tmp_archive


def test_info_of_a_slice_is_the_plan_reelfs_slice_makes(reelfs, tmp_archive, tmp_path, media_dir):
    archive = _one_clip(reelfs, tmp_archive, tmp_path, media_dir)
    name = f"main/card/{CLIP}@f10-f34"
    info = reelfs.json("info", archive, name)
    assert info["source"] == f"main/card/{CLIP}"
    assert info["plan"]["end_frame"] - info["plan"]["first_frame"] == 24
    assert info["plan"] == reelfs.json("slice", archive, name)
    text = reelfs.ok("info", archive, name).stdout
    assert f"source main/card/{CLIP}" in text and "frames 24" in text, text
    # A slice the clip cannot give is the resolver's clear error, not a panic.
    p = reelfs("info", archive, f"main/card/{CLIP}@f10-f99999")
    assert p.returncode != 0 and "panicked" not in p.stderr and p.stderr.strip(), p.stderr


def test_info_of_a_proxy_and_of_an_old_version(reelfs, tmp_archive, tmp_path, media_dir):
    archive = _one_clip(reelfs, tmp_archive, tmp_path, media_dir)
    reelfs.ok("proxy", archive, "main/card", "--profiles", "thumb")
    clip = reelfs.json("info", archive, f"main/card/{CLIP}")
    (thumb,) = [p for p in clip["proxies"] if p["profile"] == "thumb"]
    proxy = reelfs.json("info", archive, f"main/card/{thumb['name']}")
    assert proxy["content_hash"] == thumb["blob"]
    assert proxy["size"] == thumb["size"] > 0 and proxy["mode"] == "444"

    (commit,) = reelfs.json("log", archive)
    for old in (f".history/main/{_history_name(commit)}/card/{CLIP}", f"main@{commit['commit'][:8]}/card/{CLIP}"):
        assert reelfs.json("info", archive, old)["content_hash"] == clip["content_hash"], old


def test_info_refuses_what_the_resolver_refuses(reelfs, tmp_archive, tmp_path, media_dir):
    archive = _one_clip(reelfs, tmp_archive, tmp_path, media_dir)
    p = reelfs("info", archive, f"main/card/../card/{CLIP}")
    assert p.returncode != 0 and ".." in p.stderr and "main/Day01/A001C003.mov" in p.stderr, p.stderr
    p = reelfs("info", archive, "main/card/nope.mov")
    assert p.returncode != 0 and "main/card/nope.mov" in p.stderr and "no such" in p.stderr, p.stderr
    p = reelfs("info", archive, ".history")
    assert p.returncode != 0 and "reelfs ls" in p.stderr, p.stderr
