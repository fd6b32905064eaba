"""Files that hold secrets (Wi-Fi passphrases, proxy and admin passwords, MTProto secrets, a SIM PIN):
written readable by their owner only, whole, and in place by rename, so no reader ever sees them
half-written or with a wider mode. flashing.md lists which files these are."""

import os
from pathlib import Path

MODE = 0o600


def write_private(path, data):
    """Write data (bytes or text) to path with mode 0600, on the disk before it replaces path atomically.
    Callers that write one path from several threads hold their own lock."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path.with_name("." + path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), MODE)  # O_CREAT's mode applies only when the file is new
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
