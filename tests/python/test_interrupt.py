"""Long calls and Ctrl-C: a KeyboardInterrupt (a real SIGINT) or an exception
from the progress callback stops the ingest at a safe point, commits nothing,
and leaves an archive that `check` passes; Python threads run meanwhile (the
GIL is released)."""

import os
import shutil
import signal
import threading

import pytest

import reelfs

from conftest import PRORES


@pytest.fixture
def card(tmp_path, media_dir):
    """Three clips (several chunks each, so there are safe points to stop at)."""
    card = tmp_path / "A001"
    card.mkdir()
    for i in range(3):
        shutil.copy2(media_dir / PRORES, card / f"A001C00{i}.mov")
        # Different content per file, so none is deduplicated away.
        with open(card / f"A001C00{i}.mov", "ab") as f:
            f.write(bytes([i]) * 4096)
    return card


def _consistent_and_unchanged(a, cli, head):
    assert a.check(deep=True).ok
    cli.run("check", a.path, "--deep")
    assert a.branches()[0].head == head
    assert [e.name for e in a.ls("main")] == ["before.txt"]


def test_sigint_during_ingest_stops_it_and_commits_nothing(tmp_path, card, cli):
    a = reelfs.Archive.init(tmp_path / "a")
    (tmp_path / "before.txt").write_text("x")
    a.ingest([tmp_path / "before.txt"])
    head = a.branches()[0].head
    sent = []
    taken = threading.Event()

    def on_sigint(signum, frame):
        # Python's own behaviour (KeyboardInterrupt), noting when the main
        # thread took the signal.
        taken.set()
        raise KeyboardInterrupt

    def progress(p):
        # Ctrl-C as a terminal sends it: SIGINT to the process, once bytes flow.
        if p.bytes_done and not sent:
            sent.append(p.bytes_done)
            os.kill(os.getpid(), signal.SIGINT)
            # Hold this progress event until the main thread has taken the
            # signal: on a fast machine the whole ingest can otherwise finish
            # before the next signal check, and there is nothing left to stop.
            assert taken.wait(10), "SIGINT not taken by the main thread within 10 s"

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with pytest.raises(KeyboardInterrupt):
            a.ingest([card], to="Day01", progress=progress)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert sent and sent[0] < 3 * (card / "A001C000.mov").stat().st_size
    _consistent_and_unchanged(a, cli, head)
    # The interrupted ingest can simply be run again.
    rep = a.ingest([card], to="Day01")
    assert rep.files == 3 and rep.failed == []
    assert a.check(deep=True).ok


def test_an_exception_in_the_progress_callback_stops_the_ingest(tmp_path, card, cli):
    a = reelfs.Archive.init(tmp_path / "a")
    (tmp_path / "before.txt").write_text("x")
    a.ingest([tmp_path / "before.txt"])
    head = a.branches()[0].head

    class Stop(Exception):
        pass

    def progress(p):
        if p.bytes_done:
            raise Stop("enough")

    with pytest.raises(Stop):
        a.ingest([card], to="Day01", progress=progress)
    _consistent_and_unchanged(a, cli, head)


def test_python_threads_run_while_a_long_call_works(tmp_path, card):
    a = reelfs.Archive.init(tmp_path / "a")
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.001)

    t = threading.Thread(target=tick)
    calls = []
    t.start()
    try:
        # The callback counts how often the worker reached Python; the ticker must
        # have run between the ingest's start and its end.
        a.ingest([card], progress=lambda p: calls.append(len(ticks)))
    finally:
        stop.set()
        t.join()
    assert calls[-1] > calls[0]
