"""PINs a SIM rejected, remembered on this computer across runs, per SIM (by its ICCID).

A SIM locks behind its PUK after three wrong PINs in total, across power cycles and
across runs of relayctl. So a rejected PIN is written down here the moment the SIM
rejects it, and `uplink setup` never sends that PIN to that SIM again; after a
rejection, while the SIM has not accepted a PIN since, a run whose modem cannot say
how many tries are left sends no PIN at all without --pin-retry-unknown-tries.

File: $RELAY_STATE_DIR/sim-pins.json, else $XDG_STATE_HOME/relay/, else
~/.local/state/relay/ (mode 600). Per SIM: salted hashes of the rejected PINs (never
a PIN itself), how many rejections since the last accepted PIN, and when. Written
whole to a temporary file, then renamed: an interrupted write keeps the old record.
"""

import hashlib
import json
import os
import time
from pathlib import Path

from relayctl import files
from relayctl.errors import CliError


def default_path():
    base = os.environ.get("RELAY_STATE_DIR")
    if base:
        return Path(base) / "sim-pins.json"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "relay" / "sim-pins.json"


def _digest(sim, pin):
    # Salted with the SIM, so the file shows no PIN and not whether two SIMs share one. (Four digits are easy
    # to brute-force from a hash; that is fine: the file only ever holds PINs that are wrong for that SIM.)
    return hashlib.sha256(f"relay-sim-pin:{sim}:{pin}".encode()).hexdigest()[:24]


class PinLog:
    def __init__(self, path=None):
        self.path = Path(path) if path else default_path()

    def _load(self):
        """The record; none yet is empty. One that is there but unreadable fails closed: taken as empty, it
        would let a PIN the SIM rejected be sent again, and the third wrong PIN locks the SIM."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            data, why = None, getattr(e, "strerror", None) or "not valid JSON"
        if not isinstance(data, dict):
            raise CliError(f"cannot read the record of PINs SIMs rejected, {self.path} ({why if data is None else 'not a JSON object'}): "
                           "no PIN was sent; fix its permissions (was it written by sudo?), or remove it only if you "
                           "are sure no wrong PIN was tried on this SIM", 3)
        return data

    def _save(self, data):
        files.write_private(self.path, json.dumps(data, indent=1, sort_keys=True))

    def entry(self, sim):
        return self._load().get(sim) or {}

    def was_rejected(self, sim, pin):
        """When this SIM rejected this PIN (an ISO date), or None."""
        return (self.entry(sim).get("rejected") or {}).get(_digest(sim, pin))

    def rejections_since_accepted(self, sim):
        return int(self.entry(sim).get("since_accepted") or 0)

    def record_rejected(self, sim, pin):
        data = self._load()
        e = data.setdefault(sim, {})
        e.setdefault("rejected", {})[_digest(sim, pin)] = time.strftime("%Y-%m-%d %H:%M")
        e["since_accepted"] = int(e.get("since_accepted") or 0) + 1
        self._save(data)

    def record_accepted(self, sim):
        data = self._load()
        e = data.get(sim)
        if e and e.get("since_accepted"):
            e["since_accepted"] = 0  # the SIM's counter is back at its full tries
            self._save(data)
