"""Small helpers shared by the acceptance tests (plain functions, no fixtures)."""

import os
import stat

import blake3


def b3(path):
    h = blake3.blake3()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_random(path, size, mode=None, mtime_ns=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n
    if mode is not None:
        os.chmod(path, mode)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def assert_same_tree(src, dst):
    """Every file and folder under src exists under dst with the same bytes,
    mode and mtime (to the nanosecond), and nothing else is there."""
    src_names, dst_names = set(), set()
    for root, dirs, files in os.walk(src):
        for n in dirs + files:
            src_names.add(os.path.relpath(os.path.join(root, n), src))
    for root, dirs, files in os.walk(dst):
        for n in dirs + files:
            dst_names.add(os.path.relpath(os.path.join(root, n), dst))
    assert src_names == dst_names
    for rel in sorted(src_names | {"."}):
        a, b = os.path.join(src, rel), os.path.join(dst, rel)
        sa, sb = os.lstat(a), os.lstat(b)
        assert stat.S_IMODE(sa.st_mode) == stat.S_IMODE(sb.st_mode), rel
        assert sa.st_mtime_ns == sb.st_mtime_ns, rel
        if stat.S_ISREG(sa.st_mode):
            assert sa.st_size == sb.st_size, rel
            assert b3(a) == b3(b), rel
