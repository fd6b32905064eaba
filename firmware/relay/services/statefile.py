"""Files that keep state across a restart: JSON written whole, then renamed, with one good copy kept back.

save(path, obj, keep_prev) writes path.tmp; then, when path holds a good copy (keep_prev), moves it to
path.prev; then renames path.tmp to path. A power cut at any moment leaves a good copy under one of the
names. load(path, check) -> (value or None, problem or None, from_prev): the newest of path and
path.prev that parses and passes check (a function that returns the value or raises ValueError saying
what is wrong). A damaged or missing file never raises: the caller says what it kept, and starts.
on_ram_disk(path): whether path lies on tmpfs/ramfs, so it is gone at power-off (Linux: /proc/self/mounts).
"""

import json
import os

from relay.runtime import api as runtime

PREV = ".prev"
TMP = ".tmp"
MISSING = "missing"


def _read(path, check):
    try:
        text = runtime.read_file(path)
    except OSError as e:
        return None, MISSING if e.errno == 2 else "cannot read (%s)" % e  # 2: ENOENT
    if not text.strip():
        return None, "empty (cut short by a power cut?)"
    try:
        obj = json.loads(text)
    except ValueError:
        return None, "not valid JSON (cut short by a power cut?)"
    try:
        return check(obj), None
    except (ValueError, TypeError, KeyError, OverflowError) as e:
        return None, str(e) or "not what the relay wrote"


def load(path, check):
    value, why = _read(path, check)
    if value is not None:
        return value, None, False
    prev, why_prev = _read(path + PREV, check)
    if prev is not None:
        return prev, "%s: %s; kept the copy before it (%s%s)" % (path, why, path, PREV), True
    if why == MISSING and why_prev == MISSING:
        return None, None, False  # the first start: nothing to say
    return None, "%s: %s; %s%s: %s; starting from zero" % (path, why, path, PREV, why_prev), False


def _replace(src, dst):
    """Rename src to dst, replacing dst (FAT cannot rename over a file). False when src is missing."""
    try:
        os.rename(src, dst)
        return True
    except OSError:
        pass
    try:
        os.stat(src)
    except OSError:
        return False
    try:
        os.remove(dst)
    except OSError:
        pass
    os.rename(src, dst)
    return True


def save(path, obj, keep_prev=True):
    """Raises OSError when the file system refuses; the previous copies are then untouched."""
    tmp = path + TMP
    runtime.write_file(tmp, json.dumps(obj).encode())
    if keep_prev:
        _replace(path, path + PREV)
    _replace(tmp, path)


def remove_prev(path):
    try:
        os.remove(path + PREV)
    except OSError:
        pass


def on_ram_disk(path):
    """True when the absolute path lies on tmpfs or ramfs: what is written there is gone at power-off."""
    if not path.startswith("/"):
        return False
    try:
        mounts = runtime.read_file("/proc/self/mounts").decode()
    except (OSError, UnicodeError):
        return False  # a board without /proc has no RAM disk either
    best, kind = "", None
    for line in mounts.split("\n"):
        f = line.split(" ")
        if len(f) < 3:
            continue
        mp = f[1].replace("\\040", " ")
        inside = path == mp or path.startswith(mp if mp.endswith("/") else mp + "/")
        if inside and len(mp) >= len(best):
            best, kind = mp, f[2]
    return kind in ("tmpfs", "ramfs")
