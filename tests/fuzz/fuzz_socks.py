"""Coverage-guided fuzzing of the SOCKS side with atheris: for long runs, not part of `make test`.

    pip install -e '.[fuzz]'
    .venv/bin/python tests/fuzz/fuzz_socks.py -atheris_runs=5000000 [corpus_dir]
    .venv/bin/python tests/fuzz/fuzz_socks.py -max_total_time=600 -jobs=2

Each input picks a handshake (SOCKS5 with or without a required login, or SOCKS4 by its first
byte), cuts the rest into pieces, and drives it as the relay's sessions do (tests/helpers/
socks_drive.py), once whole and once in pieces out of a rewritten shared buffer, as MicroPython
reads. It fails on any exception other than SocksError, on a transcript that depends on the cuts,
or on a request the relay could not act on. Every destination a request names also goes through
addr.parse_host (address bytes, a checked name or ValueError) and the guard, and every input
through udp_unpack. The hypothesis tests in tests/firmware/ run the same model briefly on each
`make test`.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "firmware")]

import atheris  # noqa: E402

with atheris.instrument_imports():
    from relay.proto import addr, socks  # noqa: E402
    from relay.proto.guard import Guard  # noqa: E402

from tests.helpers.socks_drive import cut, drive  # noqa: E402

GUARD = Guard()
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def check_destination(host):
    if type(host) is bytes:
        assert len(host) in (4, 16), host
        GUARD.check(host)
        return
    assert type(host) is str and host, host
    try:
        dest = addr.parse_host(host)
    except ValueError:
        return
    if type(dest) is bytes:
        assert len(dest) in (4, 16)
        GUARD.check(dest)
    else:
        assert set(dest) <= _NAME_CHARS and len(dest) <= 253, dest
        assert all(0 < len(label) < 64 for label in dest.split(".")), dest
        GUARD.check_name(dest)


def one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    password = fdp.ConsumeBool()
    cuts = [fdp.ConsumeIntInRange(1, 600) for _ in range(fdp.ConsumeIntInRange(0, 8))]
    msg = fdp.ConsumeBytes(fdp.remaining_bytes())
    socks.udp_unpack(msg)
    if not msg:
        return
    whole = drive([msg], password)
    split = drive(cut(msg, cuts), password, shared=True)
    assert split == whole, (msg, cuts, whole, split)
    outcome = whole[1]
    if type(outcome) is tuple:
        host, port, _ = outcome
        assert 0 <= port <= 65535
        check_destination(host)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
