"""crypto.equal: the one constant-time compare (passwords, tokens, signatures)."""

import pytest

from relay.proto.crypto import equal


@pytest.mark.parametrize("got,want,same", [
    (b"secret", b"secret", True),
    (b"secreT", b"secret", False),
    (b"secre", b"secret", False),  # a prefix
    (b"secrets", b"secret", False),  # longer
    (b"", b"secret", False),
    (b"", b"", True),
    (b"x", b"", False),
    (bytearray(b"abc"), memoryview(b"abc"), True),
])
def test_equal(got, want, same):
    assert equal(got, want) is same


def test_work_follows_the_secret_not_the_guess():
    """Every guess reads each byte of the secret once, whatever its length or first difference."""
    class Counting(bytes):
        reads = 0

        def __getitem__(self, i):
            Counting.reads += 1
            return bytes.__getitem__(self, i)

    want = Counting(b"correct horse")
    counts = set()
    for guess in (b"", b"c", b"x" * 13, b"correct horse", b"correct horse battery staple"):
        Counting.reads = 0
        equal(guess, want)
        counts.add(Counting.reads)
    assert counts == {len(want)}
