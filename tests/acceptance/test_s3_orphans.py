"""Multipart uploads no journal entry names (issue 18): an ingest killed after
`create_multipart` but before its entry in ARCHIVE/uploads/ was made and
fsynced, or an archive folder lost with its journal, leaves an upload open in
the bucket that only the bucket's own list (ListMultipartUploads) shows. `gc`
and the next writer find those and abort them. Against moto's S3 server on
127.0.0.1 (test_s3.py's fixture), which implements ListMultipartUploads.
"""

import shutil
import signal

from helpers import b3, wait_until, write_random
from test_s3 import bucket, init_s3, on_host_b, s3_server, set_store_option  # noqa: F401 (fixtures)


def killed_mid_upload(reelfs, archive, card, bucket):
    """Start an ingest and SIGKILL it while its pack's multipart upload is open."""
    proc = reelfs.popen("ingest", archive, card)
    try:
        assert wait_until(lambda: bucket.uploads() or proc.poll() is not None, 120, 0.01)
        assert proc.poll() is None, "the ingest ended before its upload could be caught mid-way"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert bucket.uploads(), "a killed ingest leaves its multipart upload open in the bucket"


def forget_journal(archive):
    """What a kill between create_multipart and the journal entry leaves: the
    upload is open in the bucket and nothing in the folder names it."""
    entries = list((archive / "uploads").glob("*.upload"))
    for e in entries:
        e.unlink()
    return entries


def test_gc_aborts_an_upload_no_journal_entry_names(reelfs, bucket, tmp_path):
    archive = tmp_path / "archive"
    init_s3(reelfs, archive, bucket)
    card = tmp_path / "card"
    write_random(card / "big.bin", 96 << 20)
    killed_mid_upload(reelfs, archive, card, bucket)
    assert forget_journal(archive), "the killed ingest had written its journal entry"
    orphans = bucket.uploads()

    gc = reelfs.ok("gc", archive)
    assert bucket.uploads() == [], f"gc leaves no unfinished upload: {bucket.uploads()}\n{gc.stdout}{gc.stderr}"
    # Not one part of the orphans is left to bill for.
    for u in orphans:
        try:
            parts = bucket.client.list_parts(Bucket=bucket.name, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", [])
        except bucket.client.exceptions.NoSuchUpload:
            parts = []
        assert parts == [], f"{u['Key']} still has parts"
    reelfs.check_deep(archive)

    # The same ingest goes in whole afterwards, and its own upload is completed, not aborted.
    reelfs.ok("ingest", archive, card)
    assert bucket.uploads() == []
    out = tmp_path / "out"
    out.mkdir()
    reelfs.ok("restore", archive, "main/card/big.bin", out)
    assert b3(out / "big.bin") == b3(card / "big.bin")


def test_the_next_writer_aborts_an_upload_of_a_folder_that_was_lost(reelfs, bucket, tmp_path):
    """Host A's folder is gone with its journal; the folder that replaces it
    (attached to the same bucket) aborts A's upload when it first writes."""
    from test_s3_hosts import attach

    host_a = tmp_path / "host-a"
    init_s3(reelfs, host_a, bucket)
    set_store_option(host_a, "lease_seconds", "3")
    (tmp_path / "seed").mkdir()
    write_random(tmp_path / "seed" / "first.bin", 1 << 20)
    reelfs.ok("ingest", host_a, tmp_path / "seed")
    card = tmp_path / "card"
    write_random(card / "big.bin", 96 << 20)
    killed_mid_upload(reelfs, host_a, card, bucket)
    orphans = [u["UploadId"] for u in bucket.uploads()]

    shutil.rmtree(host_a)
    host_b = tmp_path / "bay2" / "archive"
    attach(reelfs, host_b, bucket)
    write_random(tmp_path / "more" / "next.bin", 1 << 20)
    # Host B writes once the dead writer's 3 s lease has run out.
    assert wait_until(lambda: on_host_b(reelfs, "ingest", host_b, tmp_path / "more").returncode == 0, 120, 1)
    left = [u["UploadId"] for u in bucket.uploads()]
    assert not set(orphans) & set(left), f"the lost folder's upload is still open: {bucket.uploads()}"
    assert reelfs("ls", host_b, "main/more/next.bin").returncode == 0
