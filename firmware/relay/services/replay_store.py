"""Where the replay filter (replay.py) survives a restart: one snapshot file and one journal file.

A relay restarted within the fake-TLS time window must still refuse a
ClientHello it accepted before (a censor replays recorded handshakes right
after a restart as readily as before it). Flash and SD cards wear with
writes, so writes follow handshakes, not the clock:
  - PATH.journal gets 8 bytes per accepted handshake, appended at most every
    FLUSH_MS (a few KB an hour for thousands of phones);
  - PATH (the snapshot: both filters, 5 bytes per remembered handshake) is
    rewritten only when the journal passes JOURNAL_MAX seeds, when the filters
    swap (once per `capacity` handshakes). It is written
    to PATH.tmp and renamed, so a power cut leaves the old snapshot or the new.
A journal names the snapshot it extends (an epoch), so a stale one is ignored.
A process that is killed loses nothing flushed; a power cut loses what the
kernel had not written yet (seconds).
"""

import os

from relay.proto import replay
from relay.runtime import api as runtime

FLUSH_MS = 2000
JOURNAL_MAX = 65536  # seeds (512 KiB) before the journal is folded into a new snapshot


class ReplayStore:
    def __init__(self, path, log):
        self.path = path
        self.log = log
        self.generation = 0
        self.dirty = False  # the journal file needs a snapshot behind it (first save, or a swap)

    def load(self, capacity):
        """The filter saved at path (with its journal), or a new one."""
        f = None
        if self.path:
            try:
                f = replay.load_snapshot(runtime.read_file(self.path), capacity)
                if f is None:
                    self.log.warn("mtproto.replay_file %s: written for another replay_cache size or torn; "
                                  "starting an empty one" % self.path)
            except OSError:
                pass  # no file yet
        if f is None:
            f = replay.ReplayFilter(capacity, runtime.random_bytes(16), runtime.random_bytes(8))
            self.dirty = True
        else:
            try:
                n = f.replay_journal(runtime.read_file(self.path + ".journal"))
            except OSError:
                n = 0
            if n:
                self.dirty = True  # fold the journal into a snapshot now: loading it again costs time
        self.generation = f.generation
        return f

    def save(self, f):
        """Write what the filter gained since the last save: a journal append, or a new snapshot when due."""
        if not self.path:
            return
        if self.dirty or f.generation != self.generation or len(f.journal) >= JOURNAL_MAX * replay.SEED_LEN:
            data = f.snapshot(runtime.random_bytes(8))
            tmp = self.path + ".tmp"
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.rename(tmp, self.path)  # atomic: the old snapshot or the new one, never half of one
            with open(self.path + ".journal", "wb") as fh:
                fh.write(f.journal_head())
            self.generation = f.generation
            self.dirty = False
        elif f.journal:
            with open(self.path + ".journal", "ab") as fh:
                fh.write(f.journal)
            f.journal = bytearray()


async def keep(relay, store, f):
    """Background task: flush the journal every FLUSH_MS (and once more when the relay stops)."""
    while True:
        await runtime.sleep_ms(FLUSH_MS)
        try:
            store.save(f)
        except OSError as e:
            relay.log.warn("mtproto.replay_file %s: cannot write (%s); replays after a restart may pass" % (store.path, e))
            await runtime.sleep_ms(60000)
