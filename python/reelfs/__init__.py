"""reelfs: a film-production archive, from Python.

The same archive and the same operations as the ``reelfs`` command line, called
in-process (no subprocess, no output to parse)::

    import reelfs
    a = reelfs.Archive.init("/srv/archive")          # or reelfs.Archive("/srv/archive")
    a.ingest(["/media/A001"], to="Day01", message="Day 01")
    f = a.info("main/Day01/A001/A001C003.mov")
    print(f.timecode, f.rate, f.reel, f.frames)
    with a.open("main/Day01/A001/A001C003.mov") as fh:
        head = fh.read(1 << 20)

Results are typed objects whose ``to_dict()`` is what ``reelfs … --json`` prints.
Errors are ``reelfs.Error`` and its subclasses (``NotFound``, ``Damaged``,
``Locked``, ``InvalidTimecode``, ``Conflict``, …); each says what to do next and
carries ``.path``. Long calls release the GIL, report through a ``progress``
callback (a ``reelfs.Progress``) and stop at a safe point on Ctrl-C
(KeyboardInterrupt), leaving the archive consistent.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, List, Optional, Sequence, Union

from . import _reelfs
from ._reelfs import (
    AlreadyExists,
    Conflict,
    Damaged,
    Error,
    InvalidRequest,
    InvalidTimecode,
    Locked,
    NotAnArchive,
    NotFound,
    Timecode,
)
from ._results import (
    Branch,
    Change,
    CheckReport,
    Colour,
    DiffReport,
    Entry,
    ExtractReport,
    FileInfo,
    FolderInfo,
    GcReport,
    IngestReport,
    LogEntry,
    MediaFacts,
    MergeConflict,
    MergeReport,
    Progress,
    Proxy,
    ProxyReport,
    Pull,
    Record,
    RestoreReport,
    Share,
    Sequence as ImageSequence,
    SliceInfo,
    SlicePlan,
    Stats,
    StagedItem,
    TcReport,
    Track,
    PlannedTape,
    SplitFile,
    TapePlan,
    WrittenFile,
    TapeProblem,
    TapeWriteReport,
    TapeMismatch,
    TapeVerifyReport,
    TapeWriteOutcome,
    Cartridge,
    TapeItem,
    TapeListing,
    TapeCopy,
    TapeWhereabouts,
    TapeExportReport,
)

__version__: str = _reelfs.__version__

__all__ = [
    "Archive", "ArchiveFile", "Slice", "Mount", "mount", "Timecode", "Progress",
    "Error", "NotFound", "NotAnArchive", "AlreadyExists", "Damaged", "Locked",
    "InvalidTimecode", "Conflict", "InvalidRequest",
    "Branch", "Change", "CheckReport", "Colour", "DiffReport", "Entry", "ExtractReport",
    "FileInfo", "FolderInfo", "GcReport", "ImageSequence", "IngestReport", "LogEntry",
    "MediaFacts", "MergeConflict", "MergeReport", "Proxy", "ProxyReport", "Pull", "Record",
    "RestoreReport", "SliceInfo", "SlicePlan", "Stats", "StagedItem", "TcReport", "Track", "__version__",
    "Server", "serve", "Share",
    "PlannedTape", "SplitFile", "TapePlan", "WrittenFile", "TapeProblem", "TapeWriteReport", "TapeMismatch",
    "TapeVerifyReport", "TapeWriteOutcome", "Cartridge", "TapeItem", "TapeListing", "TapeCopy", "TapeWhereabouts",
    "TapeExportReport",
]

PathLike = Union[str, "os.PathLike[str]"]
ProgressCallback = Callable[[Progress], Any]


def _progress(cb: Optional[ProgressCallback]) -> Optional[Callable[[dict], Any]]:
    if cb is None:
        return None
    return lambda d: cb(Progress.from_dict(d))


def _paths(p: Union[PathLike, Iterable[PathLike]]) -> List[str]:
    if isinstance(p, (str, os.PathLike)):
        return [os.fspath(p)]
    return [os.fspath(x) for x in p]


class ArchiveFile(io.RawIOBase):
    """A file of the archive opened for reading (``Archive.open``, ``Slice.open``).

    Unbuffered and seekable; every byte is verified against the chunk's BLAKE3
    before it is returned, and the GIL is released while reading. Wrap it in
    ``io.BufferedReader`` for small reads.
    """

    def __init__(self, native: "_reelfs.NativeReader") -> None:
        super().__init__()
        self._native = native
        self._pos = 0

    @property
    def name(self) -> str:
        """The path in the archive."""
        return self._native.path

    @property
    def size(self) -> int:
        return self._native.size

    @property
    def content_hash(self) -> Optional[str]:
        """``blake3:…`` of a committed file (None for a slice or a staged file)."""
        return self._native.content_hash

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        self._checkClosed()  # type: ignore[attr-defined]
        view = memoryview(b).cast("B")
        data = self._native.read_at(self._pos, len(view))
        n = len(data)
        view[:n] = data
        self._pos += n
        return n

    def readall(self) -> bytes:
        self._checkClosed()  # type: ignore[attr-defined]
        data = self._native.read_at(self._pos, max(self.size - self._pos, 0))
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()  # type: ignore[attr-defined]
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def tell(self) -> int:
        self._checkClosed()  # type: ignore[attr-defined]
        return self._pos


class Slice:
    """A timecode slice of a clip: the same plan and the same bytes as the mount's
    ``clip.mov@IN-OUT+H`` (zero-copy for QuickTime and WAV, remuxed for MXF)."""

    def __init__(self, archive: "Archive", spec: str, plan: SlicePlan, source: str) -> None:
        self._archive = archive
        #: The slice's name in the archive, ``BRANCH/PATH@IN-OUT[+H]``.
        self.spec = spec
        #: What ``reelfs slice --json`` prints for it.
        self.plan = plan
        #: The clip it cuts (mount path).
        self.source = source

    @property
    def size(self) -> int:
        return self.plan.size

    def to_dict(self) -> dict:
        """What ``reelfs slice SPEC --json`` prints."""
        return self.plan.to_dict()

    def write_to(self, path: PathLike) -> Path:
        """Write the slice's bytes to ``path`` (through a temporary, renamed when complete)."""
        self._archive._native.slice(self.spec, os.fspath(path))
        return Path(path)

    def open(self) -> ArchiveFile:
        """The slice's bytes as a seekable read-only file."""
        return self._archive.open(self.spec)

    def __repr__(self) -> str:
        return f"reelfs.Slice({self.spec!r}, frames={self.plan.frames}, size={self.plan.size})"


class Archive:
    """A reelfs archive. ``Archive(path)`` opens one; ``Archive.init(path)`` creates one.

    Paths inside the archive are ``BRANCH/PATH`` (``main/Day01/A001/A001C003.mov``),
    and ``BRANCH@COMMIT/PATH`` for an old version, as on the command line.
    """

    def __init__(self, path: PathLike) -> None:
        self._native = _reelfs.NativeArchive(os.fspath(path))

    @classmethod
    def init(cls, path: PathLike, group: Optional[str] = None) -> "Archive":
        """Create an archive in a new or empty folder (branch ``main``); private to the
        caller, or readable by ``group``."""
        _reelfs.NativeArchive.init(os.fspath(path), group)
        return cls(path)

    @property
    def path(self) -> Path:
        return Path(self._native.path)

    def __repr__(self) -> str:
        return f"reelfs.Archive({str(self.path)!r})"

    def ingest(
        self,
        sources: Union[PathLike, Iterable[PathLike]],
        to: str = "",
        branch: str = "main",
        message: Optional[str] = None,
        progress: Optional[ProgressCallback] = None,
    ) -> IngestReport:
        """Ingest files and folders as one commit on ``branch``, under the folder ``to``.

        A folder keeps its name. Files that could not be read are listed in
        ``report.failed`` (the CLI exits 2). Ctrl-C stops between chunks: nothing of
        this ingest is committed and KeyboardInterrupt is raised.
        """
        d = self._native.ingest(_paths(sources), branch, to, message, _progress(progress))
        return IngestReport.from_dict(json.loads(d))

    def ls(self, path: str = "") -> Union[List[Entry], List[Branch]]:
        """The branches (``path`` empty), or a folder's entries (a file: itself)."""
        items = json.loads(self._native.ls(path))
        if path == "":
            return [Branch.from_dict(b) for b in items]
        return [Entry.from_dict(e) for e in items]

    def info(self, path: str) -> Union[FileInfo, FolderInfo, SliceInfo]:
        """Everything known about a file (media facts, hash, stored bytes, proxies),
        the image sequences of a folder, or (where the library resolves slice names
        in ``info``) a slice's plan."""
        d = json.loads(self._native.info(path))
        if "sequences" in d:
            return FolderInfo.from_dict(d)
        if "plan" in d:
            return SliceInfo.from_dict(d)
        return FileInfo.from_dict(d)

    def open(self, path: str) -> ArchiveFile:
        """The bytes the mount shows at ``path`` (a file, an old version's, a staged
        write, a slice name, a proxy), as a seekable read-only file."""
        return ArchiveFile(self._native.open(path))

    def restore(self, paths: Union[str, Iterable[str]], dest: PathLike, progress: Optional[ProgressCallback] = None) -> RestoreReport:
        """Restore files or folders byte-identical into ``dest`` (as ``reelfs restore``).

        Each file is written under a temporary name and renamed only once its BLAKE3
        matches. Files that failed are in ``report.failed``.
        """
        specs = [paths] if isinstance(paths, str) else list(paths)
        return RestoreReport.from_dict(json.loads(self._native.restore(specs, os.fspath(dest), _progress(progress))))

    def slice(
        self,
        path: str,
        in_tc: Union[str, Timecode, None] = None,
        out_tc: Union[str, Timecode, None] = None,
        handles: Union[int, str] = 0,
    ) -> Slice:
        """The slice of the clip ``path`` from ``in_tc`` to ``out_tc`` (exclusive), with
        ``handles`` frames (or ``"2s"``) each side; or ``path`` a whole slice name
        (``clip.mov@01:00:10:00-01:00:20:00+24``, ``clip.mov@f120-f240``)."""
        if in_tc is None and out_tc is None:
            spec = path
        elif in_tc is None or out_tc is None:
            raise InvalidRequest("give both in_tc and out_tc, or a whole slice name as path")
        else:
            spec = f"{path}@{in_tc}-{out_tc}"
            if handles:
                spec += f"+{handles}"
        res = json.loads(self._native.slice(spec, None))
        return Slice(self, spec, SlicePlan.from_dict(res["plan"]), res["source"])

    def branch(self, name: str, source: str = "main") -> Branch:
        """Create branch ``name`` from ``source`` (``BRANCH[@COMMIT]``): one row, whatever the archive holds."""
        self._native.branch_create(name, source)
        return next(b for b in self.branches() if b.name == name)

    def branches(self) -> List[Branch]:
        return [Branch.from_dict(b) for b in json.loads(self._native.branches())]

    def delete_branch(self, name: str) -> None:
        """Delete a branch; data other branches use is untouched."""
        self._native.branch_delete(name)

    def diff(self, a: str, b: str, path: Optional[str] = None) -> DiffReport:
        """File-level changes from ``a`` to ``b`` (each ``BRANCH`` or ``BRANCH@COMMIT``)."""
        return DiffReport.from_dict(json.loads(self._native.diff(a, b, path)))

    def merge(
        self,
        src: str,
        into: str,
        ours: Sequence[str] = (),
        theirs: Sequence[str] = (),
        message: Optional[str] = None,
        dry_run: bool = False,
    ) -> MergeReport:
        """Three-way merge of ``src`` into the branch ``into``.

        Unresolved conflicts write nothing and raise ``reelfs.Conflict`` (its
        ``.report`` lists them; resolve with ``ours=[PATH]`` or ``theirs=[PATH]``);
        a dry run returns the report instead.
        """
        rep = MergeReport.from_dict(json.loads(self._native.merge(src, into, list(ours), list(theirs), message, dry_run)))
        if rep.outcome == "conflicts" and not dry_run:
            lines = "; ".join(f"{c.kind} {c.path}" for c in rep.conflicts if not c.resolved)
            err = Conflict(
                f"merging {src} into {into}: conflicts ({lines}); nothing was written. "
                "Resolve each with ours=[PATH] (keep the target's) or theirs=[PATH] (take the source's)"
            )
            err.path = into  # type: ignore[attr-defined]
            err.report = rep  # type: ignore[attr-defined]
            raise err
        return rep

    def log(self, branch: str = "main", path: Optional[str] = None, limit: int = 100) -> List[LogEntry]:
        """History of ``branch`` (``BRANCH[@COMMIT]``), newest first; with ``path``,
        the commits that changed it, followed back across renames."""
        return [LogEntry.from_dict(e) for e in json.loads(self._native.log(branch, path, limit))]

    def check(self, deep: bool = False, progress: Optional[ProgressCallback] = None) -> CheckReport:
        """Verify the catalog against the packs (``deep``: re-read and re-hash everything).
        ``report.ok`` is False when anything is wrong."""
        return CheckReport.from_dict(json.loads(self._native.check(deep, _progress(progress))))

    def rebuild_catalog(self) -> dict:
        """Rebuild catalog.db from the packs alone (the old one is kept beside it)."""
        result: dict = json.loads(self._native.rebuild_catalog())
        return result

    def stats(self) -> Stats:
        return Stats.from_dict(json.loads(self._native.stats()))

    def gc(self, dry_run: bool = False, progress: Optional[ProgressCallback] = None) -> GcReport:
        """Remove what no branch, commit, proxy or staged write reaches."""
        return GcReport.from_dict(json.loads(self._native.gc(dry_run, _progress(progress))))

    def _extract(self, out: PathLike, branch: str, handles: int, **source: Any) -> ExtractReport:
        d, report_path = self._native.extract(os.fspath(out), branch, handles, **source)
        rep = ExtractReport.from_dict(json.loads(d))
        object.__setattr__(rep, "_report_path", str(report_path))
        return rep

    def extract_edl(self, edl: PathLike, out: PathLike, handles: int = 0, branch: str = "main") -> ExtractReport:
        """Pull every event of a CMX3600 EDL from the clips of ``branch`` (or
        ``BRANCH/FOLDER``) into real files in ``out``, with a report.json."""
        return self._extract(out, branch, handles, edl=os.fspath(edl))

    def extract_otio(self, otio: PathLike, out: PathLike, handles: int = 0, branch: str = "main") -> ExtractReport:
        """The same from an OpenTimelineIO ``.otio`` timeline."""
        return self._extract(out, branch, handles, otio=os.fspath(otio))

    def extract(self, path: str, in_tc: Union[str, Timecode], out_tc: Union[str, Timecode], out: PathLike, handles: int = 0) -> ExtractReport:
        """One pull by hand: ``path`` from ``in_tc`` to ``out_tc`` into ``out``."""
        return self._extract(out, "main", handles, path=path, in_tc=str(in_tc), out_tc=str(out_tc))

    def proxy(
        self,
        paths: Iterable[str] = (),
        profiles: Iterable[str] = ("thumb", "sheet", "preview", "editorial"),
        jobs: int = 1,
        progress: Optional[ProgressCallback] = None,
    ) -> ProxyReport:
        """Render the missing proxies below ``paths`` (all media when empty)."""
        profs = profiles if isinstance(profiles, str) else ",".join(profiles)
        return ProxyReport.from_dict(json.loads(self._native.proxy(list(paths), profs, jobs, _progress(progress))))

    def status(self, branch: str = "main") -> List[StagedItem]:
        """What is staged on ``branch`` (written through the mount, not committed)."""
        return [StagedItem.from_dict(s) for s in json.loads(self._native.status(branch))]

    def commit(self, branch: str = "main", message: Optional[str] = None) -> Optional[str]:
        """Commit what is staged on ``branch``; the commit id, or None when nothing was."""
        return self._native.commit(branch, message)

    def tc_set(self, path: str, tc: Union[str, Timecode], reel: Optional[str] = None, rate: Optional[str] = None) -> TcReport:
        """Record a clip's start timecode (and reel, rate) as a commit; the file is untouched."""
        return TcReport.from_dict(json.loads(self._native.tc_set(path, str(tc), reel, rate)))

    def tc_clear(self, path: str) -> TcReport:
        return TcReport.from_dict(json.loads(self._native.tc_clear(path)))

    def share(
        self,
        path: str,
        key: PathLike,
        expires: Union[int, str] = "24h",
        base_url: Union[str, "Server"] = "http://127.0.0.1:8080",
    ) -> Share:
        """A signed link to ``path`` (``BRANCH/PATH``: a file, folder, slice, proxy or
        ``clip.mov.m3u8``) for a server started with ``token_key=key`` (as ``reelfs
        share``). ``expires``: seconds, or ``"24h"``, ``"90m"``, ``"7d"``. ``base_url``:
        where the recipient reaches the server (or a running ``reelfs.Server``).
        ``str(share)`` and ``share.url`` are the link."""
        base = base_url.url if isinstance(base_url, Server) else base_url
        d = _reelfs.share(os.fspath(self.path), path, os.fspath(key), str(expires), base)
        return Share.from_dict(json.loads(d))

    # --- tape (LTO/LTFS): the calls of ``reelfs tape …`` -------------------------

    def tape_plan(
        self,
        paths: Union[str, Iterable[str]],
        copies: int = 2,
        generation: Optional[str] = None,
        capacity: Optional[int] = None,
        pool: Optional[str] = None,
        name: Optional[str] = None,
    ) -> TapePlan:
        """Plan the cartridges ``paths`` (``BRANCH/PATH`` files or folders) fill,
        ``copies`` sets of them (``reelfs tape plan``). ``generation`` ("LTO-8",
        "LTO-9", ...) gives the capacity unless ``capacity`` (bytes) is given."""
        sel = [paths] if isinstance(paths, str) else list(paths)
        d = _reelfs.tape_plan(os.fspath(self.path), sel, copies, generation, capacity, pool, name)
        return TapePlan.from_dict(json.loads(d))

    def tape_write(
        self,
        plan: str,
        tape: str,
        ltfs_mount: Optional[PathLike] = None,
        device: Optional[PathLike] = None,
        verify: bool = False,
        progress: Optional[ProgressCallback] = None,
    ) -> TapeWriteOutcome:
        """Write cartridge ``tape`` (a barcode) of ``plan``, onto an LTFS volume mounted
        at ``ltfs_mount`` or through reelfs's own LTFS writer on ``device``; with
        ``verify``, read it back after. ``outcome.ok`` is False when something was
        left unwritten or read back different (the CLI exits 2)."""
        vol = _volume(ltfs_mount, device)
        d = _reelfs.tape_write(os.fspath(self.path), plan, tape, *vol, verify, _progress(progress))
        return TapeWriteOutcome.from_dict(json.loads(d))

    def tape_verify(
        self,
        tape: str,
        ltfs_mount: Optional[PathLike] = None,
        device: Optional[PathLike] = None,
        progress: Optional[ProgressCallback] = None,
    ) -> TapeVerifyReport:
        """Read every file of cartridge ``tape`` back and compare its hash with the
        archive's; ``report.ok`` is False on any mismatch (re-queued for a fresh copy)."""
        vol = _volume(ltfs_mount, device)
        d = _reelfs.tape_verify(os.fspath(self.path), tape, *vol, _progress(progress))
        return TapeVerifyReport.from_dict(json.loads(d))

    def tape_ls(self, tape: Optional[str] = None) -> TapeListing:
        """Every cartridge of every plan, or (``tape``) one cartridge and its files."""
        return TapeListing.from_dict(json.loads(_reelfs.tape_ls(os.fspath(self.path), tape)))

    def tape_where(self, path: str) -> TapeWhereabouts:
        """The cartridges (and places on them) holding ``BRANCH/PATH``."""
        return TapeWhereabouts.from_dict(json.loads(_reelfs.tape_where(os.fspath(self.path), path)))

    def tape_export(self, plan: str, dir: PathLike) -> TapeExportReport:
        """Write ``plan``'s set catalog and ASC MHL manifests into ``dir``."""
        return TapeExportReport.from_dict(json.loads(_reelfs.tape_export(os.fspath(self.path), plan, os.fspath(dir))))


def _volume(ltfs_mount: Optional[PathLike], device: Optional[PathLike]) -> "tuple[Optional[str], Optional[str]]":
    """Exactly one of the two places a cartridge can be (as the CLI's flags)."""
    if (ltfs_mount is None) == (device is None):
        raise InvalidRequest(
            "say where the cartridge is: ltfs_mount=DIR (a volume mounted by your LTFS driver) "
            "or device=PATH (a tape drive, or a folder emulating one), exactly one of them"
        )
    return (
        None if ltfs_mount is None else os.fspath(ltfs_mount),
        None if device is None else os.fspath(device),
    )


class Mount:
    """The archive mounted (FUSE) by this process; a context manager.

    ``with reelfs.mount(a, "/mnt/archive") as m: ...`` mounts for the block and
    unmounts after it, also when it raises. ``m.path`` is the mount point.
    """

    def __init__(
        self,
        archive: Union[Archive, PathLike],
        mountpoint: PathLike,
        read_only: bool = False,
        allow_other: bool = False,
        cache_size: int = 1 << 30,
        threads: int = 4,
    ) -> None:
        self.archive = archive if isinstance(archive, Archive) else Archive(archive)
        self.path = Path(mountpoint)
        self._opts = (read_only, allow_other, cache_size, threads)
        self._native: Optional[_reelfs.NativeMount] = None

    def start(self) -> "Mount":
        if self._native is None:
            self._native = _reelfs.NativeMount.start(os.fspath(self.archive.path), os.fspath(self.path), *self._opts)
        return self

    def stop(self) -> None:
        """Unmount (raises reelfs.Error while files are open on it; call again after)."""
        if self._native is not None:
            self._native.stop()
            self._native = None

    @property
    def mounted(self) -> bool:
        return self._native is not None and self._native.mounted

    def __enter__(self) -> "Mount":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def mount(
    archive: Union[Archive, PathLike],
    mountpoint: PathLike,
    read_only: bool = False,
    allow_other: bool = False,
    cache_size: int = 1 << 30,
    threads: int = 4,
) -> Mount:
    """Mount ``archive`` at ``mountpoint`` (use as a context manager; or ``.start()``/``.stop()``)."""
    return Mount(archive, mountpoint, read_only, allow_other, cache_size, threads)


class Server:
    """The archive served over HTTP (``reelfs serve``) by this process, on a thread
    of its own; a context manager.

    ``with reelfs.serve(a, listen="127.0.0.1:0") as srv: urlopen(srv.url + "/main/…")``
    serves for the block and stops after it, also when it raises. URLs are mount
    paths (files, slices, proxies, ``BRANCH@COMMIT/…``, folder listings).
    """

    def __init__(
        self,
        archive: Union[Archive, PathLike],
        listen: str = "127.0.0.1:8080",
        cache_size: int = 1 << 30,
        token_key: Optional[PathLike] = None,
        max_connections: int = 256,
        idle_timeout: float = 60.0,
    ) -> None:
        self.archive = archive if isinstance(archive, Archive) else Archive(archive)
        self.listen = listen
        key = None if token_key is None else os.fspath(token_key)
        self._opts = (cache_size, key, max_connections, float(idle_timeout))
        self._native: Optional[_reelfs.NativeServer] = None

    def start(self) -> "Server":
        """Listen; returns once connections are accepted (raises reelfs.Error why not)."""
        if self._native is None:
            self._native = _reelfs.NativeServer.start(os.fspath(self.archive.path), self.listen, *self._opts)
        return self

    def stop(self) -> None:
        """Stop serving (open connections are dropped) and wait for the server's thread."""
        if self._native is not None:
            native, self._native = self._native, None
            native.stop()

    @property
    def running(self) -> bool:
        return self._native is not None and self._native.running

    @property
    def address(self) -> str:
        """``IP:PORT`` it listens on (a port 0 asked for is the port it got)."""
        if self._native is None:
            raise InvalidRequest("the server is not running: call start() or use it in a with block")
        return self._native.address

    @property
    def url(self) -> str:
        """``http://IP:PORT``, the base of its URLs (and of ``Archive.share`` links)."""
        return f"http://{self.address}"  # an IPv6 address is already in [brackets]

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve(
    archive: Union[Archive, PathLike],
    listen: str = "127.0.0.1:8080",
    cache_size: int = 1 << 30,
    token_key: Optional[PathLike] = None,
    max_connections: int = 256,
    idle_timeout: float = 60.0,
) -> Server:
    """Serve ``archive`` over HTTP at ``listen`` (use as a context manager; or
    ``.start()``/``.stop()``). ``token_key``: serve only links signed with the key
    in that file (``Archive.share``). Port 0 picks a free port (``server.url``)."""
    return Server(archive, listen, cache_size, token_key, max_connections, idle_timeout)
