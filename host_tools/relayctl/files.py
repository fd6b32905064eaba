"""Write a file whole or not at all: a temporary file beside it, fsync, then rename over it.

A crash, Ctrl-C or a full disk leaves the previous version (inventory.csv, a site file, the PIN log),
never half a file.
"""

import os
import tempfile
from pathlib import Path


def replace(path, text, mode=None):
    """Write text to path atomically; mode: the new file's permissions (default: the old file's, else 0o644)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + "-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            f.write(text)
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
