"""Typed results of the reelfs calls.

Each class is a frozen dataclass built from the JSON the library produces for the
same command, and ``to_dict()`` gives that JSON back unchanged: it is exactly what
``reelfs COMMAND --json`` prints, so tools can move between the CLI and Python.
Fields that have a natural Python type get it: frame rates are
``fractions.Fraction``, timecodes ``reelfs.Timecode``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Dict, List, Optional, Type, TypeVar

from ._reelfs import Timecode

R = TypeVar("R", bound="Record")


def _conv(f: Callable[[Any], Any]) -> Any:
    """A field converted from its JSON value by ``f`` (None stays None)."""
    return field(metadata={"conv": f})


def _fraction(s: Any) -> Optional[Fraction]:
    """"24000/1001" -> Fraction(24000, 1001); anything else unreadable -> None."""
    try:
        return Fraction(str(s))
    except (ValueError, ZeroDivisionError):
        return None


def _timecode(label: Optional[str], rate: Optional[str], drop_frame: Optional[bool]) -> Optional[Timecode]:
    """The start timecode as a Timecode, when the label and its rate are known."""
    if not label or not rate:
        return None
    try:
        return Timecode(label, rate=Fraction(rate), drop_frame=bool(drop_frame))
    except Exception:  # a rate reelfs does not count timecode at (e.g. 12 fps)
        return None


def _list_of(cls: Type[R]) -> Callable[[Any], List[R]]:
    return lambda items: [cls.from_dict(i) for i in items]


class Record:
    """Base of every result: built from a dict, ``to_dict()`` returns it."""

    _raw: Dict[str, Any]

    @classmethod
    def from_dict(cls: Type[R], data: Dict[str, Any]) -> R:
        kwargs = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name.startswith("_"):
                continue
            if "derive" in f.metadata:
                kwargs[f.name] = f.metadata["derive"](data)
                continue
            value = data.get(f.metadata.get("key", f.name))
            conv = f.metadata.get("conv")
            kwargs[f.name] = conv(value) if conv is not None and value is not None else value
        obj = cls(**kwargs)
        object.__setattr__(obj, "_raw", data)
        return obj

    def to_dict(self) -> Dict[str, Any]:
        """The result as ``reelfs … --json`` prints it (a deep copy)."""
        return copy.deepcopy(self._raw)


def _derived(f: Callable[[Dict[str, Any]], Any]) -> Any:
    """A field computed from the whole JSON object."""
    return field(metadata={"derive": f})


def _key(name: str, conv: Optional[Callable[[Any], Any]] = None) -> Any:
    """A field read from the JSON key ``name``."""
    meta: Dict[str, Any] = {"key": name}
    if conv is not None:
        meta["conv"] = conv
    return field(metadata=meta)


def _tc_of(d: Dict[str, Any]) -> Optional[Timecode]:
    return _timecode(d.get("timecode"), d.get("timecode_rate") or d.get("frame_rate"), d.get("drop_frame"))


@dataclass(frozen=True)
class Progress(Record):
    """Where a long call is: handed to the ``progress`` callback after every event."""

    phase: str
    unit: Optional[str]
    done: int
    total: int
    files_done: int
    files_total: int
    message: str
    finished: bool

    @property
    def bytes_done(self) -> int:
        """Bytes done in a phase counted in bytes (0 for frames or items)."""
        return self.done if self.unit == "bytes" else 0


@dataclass(frozen=True)
class IngestReport(Record):
    files: int
    files_stored: int
    files_unchanged: int
    #: [path, reason] of each file that could not be ingested.
    failed: List[List[str]]
    #: [path, reason] of media FFmpeg found damaged (stored all the same).
    damaged: List[List[str]]
    bytes_read: int
    bytes_logical: int
    bytes_new_stored: int
    chunks_new: int
    chunks_dedup: int
    #: The commit made (hex), None when nothing changed.
    commit: Optional[str]


@dataclass(frozen=True)
class Branch(Record):
    name: str
    head: Optional[str]


@dataclass(frozen=True)
class Entry(Record):
    """A file or folder as ``ls`` lists it, with its media facts when probed."""

    name: str
    kind: str
    size: int
    mode: str
    mtime_ns: int
    hash: str
    uid: Optional[int]
    gid: Optional[int]
    damaged: Optional[bool]
    frames: Optional[int] = _key("duration_frames")
    rate: Optional[Fraction] = _key("frame_rate", _fraction)
    timecode: Optional[Timecode] = _derived(_tc_of)
    codec: Optional[str] = _key("codec")
    reel: Optional[str] = _key("reel")
    timecode_source: Optional[str] = _key("timecode_source")


@dataclass(frozen=True)
class Track(Record):
    """One stream of a media file."""

    index: int
    kind: str
    codec: Optional[str]
    channels: Optional[int] = _key("channels")
    sample_rate: Optional[int] = _key("sample_rate")
    width: Optional[int] = _key("width")
    height: Optional[int] = _key("height")


@dataclass(frozen=True)
class Colour(Record):
    primaries: Optional[str] = _key("color_primaries")
    transfer: Optional[str] = _key("color_transfer")
    matrix: Optional[str] = _key("color_matrix")


@dataclass(frozen=True)
class MediaFacts(Record):
    """What the probe found in a file, with any timecode recorded by ``tc_set`` applied."""

    container: str
    codec: Optional[str]
    profile: Optional[str]
    width: Optional[int]
    height: Optional[int]
    variable_frame_rate: bool
    duration_seconds: Optional[float]
    drop_frame: bool
    reel: Optional[str]
    audio_tracks: Optional[int]
    audio_channels: Optional[int]
    timecode_source: Optional[str]
    #: Exact frame rate (Fraction(24000, 1001)); None for stills and audio.
    rate: Optional[Fraction] = _key("frame_rate", _fraction)
    #: Duration in frames.
    frames: Optional[int] = _key("duration_frames")
    #: Start timecode (the file's, the one set by the user, or None when there is none).
    timecode: Optional[Timecode] = _derived(_tc_of)
    tracks: List[Track] = _key("streams", _list_of(Track))
    colour: Colour = _derived(lambda d: Colour.from_dict(d))


@dataclass(frozen=True)
class Proxy(Record):
    profile: str
    name: str
    size: Optional[int]
    note: str
    partial_at: Optional[int]
    damaged: List[Dict[str, Any]]


@dataclass(frozen=True)
class FileInfo(Record):
    """``info`` of a file."""

    path: str
    size: int
    mode: str
    mtime_ns: int
    content_hash: str
    stored_bytes: int
    logical_bytes: int
    uid: Optional[int]
    gid: Optional[int]
    damaged: bool
    probe_error: Optional[str]
    media: Optional[MediaFacts] = _key("media", MediaFacts.from_dict)
    proxies: List[Proxy] = _key("proxies", _list_of(Proxy))

    # The shorthand: info(...).rate, .timecode, .reel, .frames, .tracks.
    @property
    def rate(self) -> Optional[Fraction]:
        return self.media.rate if self.media else None

    @property
    def timecode(self) -> Optional[Timecode]:
        return self.media.timecode if self.media else None

    @property
    def reel(self) -> Optional[str]:
        return self.media.reel if self.media else None

    @property
    def frames(self) -> Optional[int]:
        return self.media.frames if self.media else None

    @property
    def tracks(self) -> List[Track]:
        return self.media.tracks if self.media else []


@dataclass(frozen=True)
class Sequence(Record):
    pattern: str
    stem: str
    first: int
    last: int
    frames: int
    span: int
    gaps: List[str]
    bytes: int
    timecode: Optional[str]
    frame_rate: Optional[str]
    proxies: List[Proxy] = _key("proxies", _list_of(Proxy))


@dataclass(frozen=True)
class FolderInfo(Record):
    """``info`` of a folder holding image sequences."""

    path: str
    sequences: List[Sequence] = _key("sequences", _list_of(Sequence))


@dataclass(frozen=True)
class RestoreReport(Record):
    files: int
    bytes: int
    #: [path, reason] of each file not restored.
    failed: List[List[str]]


@dataclass(frozen=True)
class SlicePlan(Record):
    """What a slice name resolves to (``reelfs slice --json``)."""

    first_frame: int
    end_frame: int
    in_tc: str
    out_tc: str
    rate: str
    handles_before: int
    handles_after: int
    handles_requested: int
    size: int
    method: str
    cached: bool
    #: Timecode of the slice's first frame (handles included), as the CLI prints it.
    start_tc: str

    @property
    def frames(self) -> int:
        return self.end_frame - self.first_frame


@dataclass(frozen=True)
class SliceInfo(Record):
    """``info`` of a slice name: the clip it cuts and its plan."""

    path: str
    source: str
    plan: SlicePlan = _key("plan", SlicePlan.from_dict)


@dataclass(frozen=True)
class Change(Record):
    status: str
    path: str
    size: Optional[int]
    old_size: Optional[int]
    hash: Optional[str]
    old_hash: Optional[str]
    old_path: Optional[str] = _key("old_path")
    owner: Optional[Dict[str, Any]] = _key("owner")


@dataclass(frozen=True)
class DiffReport(Record):
    a: str
    b: str
    path: Optional[str]
    summary: Dict[str, int]
    changes: List[Change] = _key("changes", _list_of(Change))


@dataclass(frozen=True)
class MergeConflict(Record):
    path: str
    kind: str
    resolved: Optional[str]


@dataclass(frozen=True)
class MergeReport(Record):
    src: str
    dst: str
    #: "merged", "fast-forward", "up-to-date" or "conflicts" (dry runs only; else Conflict is raised).
    outcome: str
    base: Optional[str]
    commit: Optional[str]
    parents: List[str]
    unused_resolutions: List[str]
    dry_run: bool
    conflicts: List[MergeConflict] = _key("conflicts", _list_of(MergeConflict))
    changes: List[Change] = _key("changes", _list_of(Change))


@dataclass(frozen=True)
class LogEntry(Record):
    commit: str
    tree: str
    parents: List[str]
    merge: bool
    time_ns: int
    author: str
    message: str
    branch: str
    #: With a path: where the file was in this commit, what happened to it, and its old name.
    path: Optional[str] = _key("path")
    status: Optional[str] = _key("status")
    renamed_from: Optional[str] = _key("renamed_from")


@dataclass(frozen=True)
class CheckReport(Record):
    packs: int
    chunks: int
    objects: int
    bytes_verified: int
    problems: List[Any]
    damaged_files: List[Any]
    uncommitted_packs: List[Any]
    catalog_damage: List[Any]
    lost: List[Any]

    @property
    def ok(self) -> bool:
        """True when nothing is wrong (``reelfs check`` exits 0)."""
        return not (self.problems or self.damaged_files or self.catalog_damage or self.lost)


@dataclass(frozen=True)
class Stats(Record):
    branches: int
    commits: int
    files: int
    logical_bytes: int
    unique_bytes: int
    stored_bytes: int
    pack_bytes: int
    chunks: int
    packs: int
    dedup_ratio: float
    compression_ratio: float
    catalog_bytes: int


@dataclass(frozen=True)
class GcReport(Record):
    dry_run: bool
    bytes_freed: int
    chunks_freed: int
    packs_deleted: int
    packs_compacted: int
    problems: List[Any]


@dataclass(frozen=True)
class Pull(Record):
    """One pull of an extract: what was asked, what happened (``status``), where it went."""

    source: str
    reel: str
    clip: Optional[str]
    src_in: str
    src_out: str
    #: "extracted", "missing", "failed", "invalid", "duplicate" or "skipped".
    status: str
    reason: Optional[str]
    output: Optional[str]
    first_tc: Optional[str]
    frames: Optional[int]
    handles_before: Optional[int]
    handles_after: Optional[int]
    bytes: Optional[int]
    line: Optional[int]
    candidates: List[Dict[str, Any]]
    chosen_because: Optional[str]


@dataclass(frozen=True)
class ExtractReport(Record):
    """What ``reelfs extract --json`` prints, plus where report.json was written."""

    warnings: List[str]
    extracted: int
    missing: int
    failed: int
    invalid: int
    pulls: List[Pull] = _key("pulls", _list_of(Pull))

    @property
    def report_path(self) -> Optional[str]:
        """Where report.json was written (beside the pulls)."""
        return getattr(self, "_report_path", None)

    @property
    def complete(self) -> bool:
        """True when every pull was made (the CLI exits 0, else 3)."""
        return self.missing == 0 and self.failed == 0 and self.invalid == 0


@dataclass(frozen=True)
class ProxyReport(Record):
    sources: int
    rendered: List[Dict[str, Any]]
    up_to_date: int
    skipped: List[Any]
    failed: List[Any]
    frames: int
    seconds: float
    interrupted: bool


@dataclass(frozen=True)
class StagedItem(Record):
    path: str
    #: "written", "moved", "deleted" or "folder".
    change: str
    size: Optional[int] = _key("size")


@dataclass(frozen=True)
class TcReport(Record):
    path: str
    timecode: Optional[str]
    reel: Optional[str]
    rate: Optional[str]
    commit: str


# --- serve / share -----------------------------------------------------------


@dataclass(frozen=True)
class Share(Record):
    """A signed link (``reelfs share --json``) for a server started with the same key."""

    url: str
    path: str
    #: Seconds since the epoch after which the server refuses the link.
    expires: int
    #: "file", "slice", "proxy", "folder" or "playlist".
    kind: str

    def __str__(self) -> str:
        return self.url


# --- tape --------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedTape(Record):
    barcode: str
    copy: int
    files: int
    bytes: int


@dataclass(frozen=True)
class SplitFile(Record):
    """A file larger than a cartridge, written in parts."""

    source: str
    size: int
    parts: int
    #: The copy-1 cartridges holding its parts, in part order.
    barcodes: List[str]


@dataclass(frozen=True)
class TapePlan(Record):
    """``reelfs tape plan --json``: the cartridges a selection fills."""

    name: str
    pool: str
    generation: str
    capacity: int
    usable: int
    copies: int
    files: int
    bytes: int
    tapes: List[PlannedTape] = _key("tapes", _list_of(PlannedTape))
    splits: List[SplitFile] = _key("splits", _list_of(SplitFile))
    #: Entries that are not regular files (not written to tape), as BRANCH/PATH.
    skipped: List[str] = _key("skipped")


@dataclass(frozen=True)
class WrittenFile(Record):
    tape_path: str
    source: str
    bytes: int
    start_block: int


@dataclass(frozen=True)
class TapeProblem(Record):
    tape_path: str
    source: str
    error: str


@dataclass(frozen=True)
class TapeWriteReport(Record):
    barcode: str
    plan: str
    written: List[WrittenFile] = _key("written", _list_of(WrittenFile))
    bytes: int = _key("bytes")
    seconds: float = _key("seconds")
    mb_per_s: float = _key("mb_per_s")
    #: The file a write error or end of medium cut short (not on the tape).
    abandoned: Optional[TapeProblem] = _key("abandoned", TapeProblem.from_dict)
    #: Files refused or unreadable from the archive (left queued).
    failed: List[TapeProblem] = _key("failed", _list_of(TapeProblem))
    #: Where the rest of this cartridge's files went after ``abandoned``.
    moved_to: Optional[str] = _key("moved_to")
    moved: int = _key("moved")
    not_indexed: List[str] = _key("not_indexed")
    #: The set catalog and manifest files written last.
    catalog_files: List[str] = _key("catalog_files")
    closed_early: Optional[str] = _key("closed_early")

    @property
    def complete(self) -> bool:
        """Nothing abandoned, failed or closed early."""
        return self.abandoned is None and not self.failed and self.closed_early is None


@dataclass(frozen=True)
class TapeMismatch(Record):
    tape_path: str
    source: str
    problem: str
    #: The cartridge a fresh copy was queued for.
    requeued_to: Optional[str]


@dataclass(frozen=True)
class TapeVerifyReport(Record):
    """``reelfs tape verify --json``: every file read back and hashed."""

    barcode: str
    verified: int
    bytes: int
    seconds: float
    mb_per_s: float
    mismatches: List[TapeMismatch] = _key("mismatches", _list_of(TapeMismatch))

    @property
    def ok(self) -> bool:
        """True when every file read back equal (the CLI exits 0, else 2)."""
        return not self.mismatches


@dataclass(frozen=True)
class TapeWriteOutcome(Record):
    """``reelfs tape write --json``: the write and, with ``verify=True``, the read-back."""

    write: TapeWriteReport = _key("write", TapeWriteReport.from_dict)
    verify: Optional[TapeVerifyReport] = _key("verify", TapeVerifyReport.from_dict)

    @property
    def ok(self) -> bool:
        """True when the plan's files for this cartridge were all written (and
        verified, when asked); the CLI exits 0, else 2."""
        return self.write.complete and (self.verify is None or self.verify.ok)


@dataclass(frozen=True)
class Cartridge(Record):
    """A cartridge of a plan and where it stands."""

    barcode: str
    plan: str
    copy: int
    seq: int
    #: "planned", "written", "verified", ...
    state: str
    pool: str
    files: int
    bytes: int
    written: int
    verified: int
    written_ns: Optional[int] = _key("written_ns")
    note: Optional[str] = _key("note")


@dataclass(frozen=True)
class TapeItem(Record):
    """A file (or part of one) queued for, or on, a cartridge."""

    barcode: str
    ord: int
    plan: str
    tape_path: str
    source: str
    blob: str
    file_size: int
    offset: int
    length: int
    part: int
    parts: int
    mtime_ns: int
    state: str
    partition: Optional[str] = _key("partition")
    start_block: Optional[int] = _key("start_block")
    md5: Optional[str] = _key("md5")
    sha1: Optional[str] = _key("sha1")
    xxh64: Optional[str] = _key("xxh64")
    blake3: Optional[str] = _key("blake3")
    written_ns: Optional[int] = _key("written_ns")
    verified_ns: Optional[int] = _key("verified_ns")
    note: Optional[str] = _key("note")


@dataclass(frozen=True)
class TapeListing(Record):
    """``reelfs tape ls --json``: every cartridge (``kind`` "cartridges"), or one
    cartridge and its files (``kind`` "files")."""

    kind: str
    cartridges: List[Cartridge] = _derived(lambda d: [Cartridge.from_dict(c) for c in d.get("cartridges", [])])
    cartridge: Optional[Cartridge] = _key("cartridge", Cartridge.from_dict)
    files: List[TapeItem] = _derived(lambda d: [TapeItem.from_dict(f) for f in d.get("files", [])])


@dataclass(frozen=True)
class TapeCopy(Record):
    barcode: str
    copy: int
    state: str
    tape_path: str
    part: int
    parts: int
    offset: int
    length: int
    partition: Optional[str]
    start_block: Optional[int]
    note: Optional[str]


@dataclass(frozen=True)
class TapeWhereabouts(Record):
    """``reelfs tape where --json``: the cartridges holding a file."""

    source: str
    copies: List[TapeCopy] = _key("copies", _list_of(TapeCopy))


@dataclass(frozen=True)
class TapeExportReport(Record):
    """``reelfs tape export --json``: the plan's catalog files written to ``dir``."""

    plan: str
    dir: str
    files: List[str]
