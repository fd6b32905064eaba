"""inventory.csv: one row per successfully flashed board.

A row is written only after the board's flash verified (and, unless
--no-boot-check, after the relay reported ready with the expected config
hash). The file is rewritten atomically (temporary file, fsync, rename) under
a lock, so a crash or Ctrl-C never leaves half a row, and parallel boards do
not interleave. A board flashed again replaces its old row (the old
credentials are gone from the board).
"""

import csv
import io
import threading
from pathlib import Path

from relayctl.files import write_private

COLUMNS = ("time", "mac", "board", "chip", "ssid", "wifi_password", "proxy_host", "proxy_port", "proxy_user",
           "proxy_password", "admin_password", "mtproto_port", "mtproto_secret", "fleet_name", "firmware_sha256", "config_sha256", "relay_version", "boot_checked", "port")

_lock = threading.Lock()


def read(path):
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def add(path, row):
    path = Path(path)
    with _lock:
        rows = [r for r in read(path) if r.get("mac") != row["mac"]]
        rows.append({k: row.get(k, "") for k in COLUMNS})
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        write_private(path, buf.getvalue())  # it holds passwords
