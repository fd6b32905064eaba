"""Which MTProto handshakes were seen already: a replay filter in bounded, stated memory. Sans-I/O.

A censor records a client's first bytes and sends them again to see whether
the relay answers as a proxy (alexbers/mtprotoproxy#108). The relay remembers
a fingerprint of every handshake it accepted and masks a repeat like any
failure.

Two Bloom filters are used in turn (a "ping-pong" Bloom filter, as
shadowsocks-rust's): new fingerprints go into the current one; when it holds
`capacity`, the other is cleared and becomes current. So at least the last
`capacity` handshakes (at most 2 x capacity) are always remembered, and
memory is fixed: 2 x capacity x BITS / 8 bytes, 512 at least (5 bytes per
handshake: 1,000,000 handshakes in 5 MB). Each filter's false-positive rate at full
load is (1 - e^(-HASHES/BITS))^HASHES, about 7e-5 with 20 bits and 14
hashes; a false positive costs a real client one masked try (it retries).
Positions come from SHA-256(salt + fingerprint), with a salt of our own,
so a client cannot pick fingerprints that land on chosen bits.

Persistence (replay_store.py does the file I/O): snapshot() is the whole
state; journal holds the 8-byte position seeds added since the last
snapshot, so the store appends a few bytes per handshake instead of
rewriting megabytes; load_snapshot() + replay_journal() rebuild it.
"""

import hashlib
import struct

BITS = 20  # bits per remembered handshake, per filter
HASHES = 14  # ~ BITS x ln 2, the optimum for BITS
SEED_LEN = 8
# A filter of a few dozen bits (replay_cache 4 made 80) is far worse than its formula: double hashing
# modulo a small m repeats positions, and 0.9 % of fresh clients met the mask as "replays". 2,048 bits
# per filter keep small caches near exact for 512 bytes in all.
MIN_BYTES = 256
MAGIC = b"RLYRPL1\n"
JOURNAL_MAGIC = b"RLYRJL1\n"
_HEAD = ">16sIIBI8s"  # salt, capacity, bytes per filter, hashes, count in current, epoch
_HEAD_LEN = struct.calcsize(_HEAD)


class ReplayFilter:
    __slots__ = ("capacity", "salt", "nbytes", "nbits", "cur", "old", "count", "journal", "epoch", "generation")

    def __init__(self, capacity, salt, epoch):
        self.capacity = max(capacity, 1)
        self.salt = bytes(salt)
        self.nbytes = max((self.capacity * BITS + 7) // 8, MIN_BYTES)
        self.nbits = self.nbytes * 8
        self.cur = bytearray(self.nbytes)
        self.old = bytearray(self.nbytes)
        self.count = 0  # fingerprints in cur
        self.journal = bytearray()  # seeds added since the last snapshot
        self.epoch = bytes(epoch)  # names the snapshot a journal belongs to
        self.generation = 0  # counts swaps: the store writes a snapshot after each

    def memory(self):
        """Bytes the two filters take."""
        return 2 * self.nbytes

    def seed(self, key):
        return hashlib.sha256(self.salt + bytes(key)).digest()[:SEED_LEN]

    def _has(self, bits, seed):
        h1, h2 = struct.unpack(">II", seed)
        h2 |= 1
        m = self.nbits
        for i in range(HASHES):
            p = (h1 + i * h2) % m
            if not bits[p >> 3] & (1 << (p & 7)):
                return False
        return True

    def __contains__(self, key):
        s = self.seed(key)
        return self._has(self.cur, s) or self._has(self.old, s)

    def add(self, key):
        self._add_seed(self.seed(key))

    def _add_seed(self, seed, log=True):
        h1, h2 = struct.unpack(">II", seed)
        h2 |= 1
        m = self.nbits
        bits = self.cur
        for i in range(HASHES):
            p = (h1 + i * h2) % m
            bits[p >> 3] |= 1 << (p & 7)
        if log:
            self.journal += seed
        self.count += 1
        if self.count >= self.capacity:
            self.old, self.cur = self.cur, self.old
            self.cur[:] = bytes(self.nbytes)  # cleared once per `capacity` handshakes
            self.count = 0
            self.generation += 1
            self.journal = bytearray()  # the store snapshots after a swap: the journal starts over

    # -- persistence (bytes only; replay_store.py reads and writes the files) ---------------

    def snapshot(self, epoch):
        """The whole state as bytes; epoch names it (a journal written after it carries the same)."""
        self.epoch = bytes(epoch)
        self.journal = bytearray()
        head = MAGIC + struct.pack(_HEAD, self.salt, self.capacity, self.nbytes, HASHES, self.count, self.epoch)
        return head + bytes(self.cur) + bytes(self.old)

    def journal_head(self):
        return JOURNAL_MAGIC + self.epoch

    def replay_journal(self, data):
        """Add the seeds of a journal file that belongs to this filter's snapshot; -> seeds added."""
        if data[: len(JOURNAL_MAGIC)] != JOURNAL_MAGIC or bytes(data[8:16]) != self.epoch:
            return 0
        n = 0
        for i in range(16, len(data) - SEED_LEN + 1, SEED_LEN):
            self._add_seed(bytes(data[i : i + SEED_LEN]), False)
            n += 1
        return n


def load_snapshot(data, capacity):
    """A ReplayFilter from snapshot() bytes, or None when they are torn, foreign, or sized for another capacity."""
    if len(data) < len(MAGIC) + _HEAD_LEN or data[: len(MAGIC)] != MAGIC:
        return None
    salt, cap, nbytes, hashes, count, epoch = struct.unpack(_HEAD, data[len(MAGIC) : len(MAGIC) + _HEAD_LEN])
    f = ReplayFilter(capacity, salt, epoch)
    start = len(MAGIC) + _HEAD_LEN
    if cap != f.capacity or nbytes != f.nbytes or hashes != HASHES or len(data) != start + 2 * nbytes:
        return None
    f.cur[:] = data[start : start + nbytes]
    f.old[:] = data[start + nbytes :]
    f.count = count
    return f
