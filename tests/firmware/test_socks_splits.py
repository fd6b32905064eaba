"""The one SOCKS driver (sessions/socks_session.py), fed in any split (hypothesis): the bytes the relay
answers, and the request it acts on, never depend on how the client's bytes were cut.

drive() (tests/helpers/socks_drive.py) feeds it as its shells do. Every case also runs
with the pieces handed over in one reused bytearray that is rewritten before the next feed, as
MicroPython's shared receive buffer is.
"""

import pytest
from hypothesis import given, settings, strategies as st

from relay.proto import socks
from tests.helpers.socks_drive import cut, drive

LOGIN = b"\x01\x05phone\x06s3cret"
V4 = b"\x01\x7f\x00\x00\x01\x1f\x90"
V6 = b"\x04" + b"\x00" * 15 + b"\x01\x00\x50"
NAME = b"\x03\x0ctelegram.org\x01\xbb"
CASES = {
    "socks5": (b"\x05\x01\x00\x05\x01\x00" + NAME + b"payload", False),
    "socks5-v6": (b"\x05\x02\x00\x01\x05\x01\x00" + V6, False),
    "socks5-login": (b"\x05\x01\x02" + LOGIN + b"\x05\x01\x00" + V4 + b"payload", True),
    "socks5-wrong-login": (b"\x05\x01\x02\x01\x05phone\x05wrong\x05\x01\x00" + V4, True),
    "socks5-bind": (b"\x05\x01\x00\x05\x02\x00" + V4, False),
    "socks5-login-bind": (b"\x05\x01\x02" + LOGIN + b"\x05\x02\x00" + V4, True),
    "socks5-bad-atyp": (b"\x05\x01\x00\x05\x01\x00\x09" + V4[1:], False),
    "socks5-no-method": (b"\x05\x01\x00\x05\x01\x00" + V4, True),
    "socks4": (b"\x04\x01\x1f\x90\x7f\x00\x00\x01\x05\x00payload", False),
    "socks4a": (b"\x04\x01\x01\xbb\x00\x00\x00\x01u\x00telegram.org\x00payload", False),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_single_cut_and_bytewise_give_the_whole_transcript(name):
    msg, pw = CASES[name]
    whole = drive([msg], pw)
    assert whole[1] is not None, whole
    for shared in (False, True):
        assert drive([msg[i : i + 1] for i in range(len(msg))], pw, shared) == whole
        for i in range(1, len(msg)):
            assert drive([msg[:i], msg[i:]], pw, shared) == whole, i


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(CASES)), st.lists(st.integers(1, 80), max_size=10), st.booleans())
def test_any_split_gives_the_whole_transcript(name, cuts, shared):
    msg, pw = CASES[name]
    assert drive(cut(msg, cuts), pw, shared) == drive([msg], pw)


def test_transcripts_are_what_the_rfcs_say():
    assert drive([CASES["socks5-login"][0]], True) == (b"\x05\x02\x01\x00", (b"\x7f\x00\x00\x01", 8080, b"payload"))
    assert drive([CASES["socks5-bind"][0]], False) == (b"\x05\x00" + socks.socks5_reply(socks.REP_COMMAND), "command")
    assert drive([CASES["socks5-login-bind"][0]], True)[0] == b"\x05\x02\x01\x00" + socks.socks5_reply(socks.REP_COMMAND)
    assert drive([CASES["socks5-wrong-login"][0]], True) == (b"\x05\x02\x01\x01", "auth")
    assert drive([CASES["socks5-no-method"][0]], True) == (b"\x05\xff", "auth")
    assert drive([CASES["socks4"][0]], False) == (b"", (b"\x7f\x00\x00\x01", 8080, b"payload"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(1, 300), max_size=8), st.booleans(), st.booleans())
def test_garbage_in_any_split_is_a_reply_or_a_wait_never_a_crash(blob, cuts, pw, shared):
    if not blob:
        return
    drive(cut(blob, cuts), pw, shared)
