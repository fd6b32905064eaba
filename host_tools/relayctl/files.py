"""Write a file whole or not at all: a temporary file beside it, fsync, then rename over it.

A crash, Ctrl-C or a full disk leaves the previous version (inventory.csv, a site file, the PIN log),
never half a file. Files that hold secrets (Wi-Fi passphrases, proxy and admin passwords, MTProto
secrets, a SIM PIN) go through write_private: readable by their owner only from the moment they exist,
so no reader ever sees them half-written or with a wider mode. flashing.md lists which files these are.
"""

import os
import tempfile
from pathlib import Path

PRIVATE = 0o600


def replace(path, data, mode=None):
    """Write data (text or bytes) to path atomically; mode: the new file's permissions (default: the old
    file's, else 0o644). Callers that write one path from several threads hold their own lock."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + "-", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_private(path, data):
    """A file that holds secrets: mode 0600, whatever the file it replaces had."""
    replace(path, data, PRIVATE)
