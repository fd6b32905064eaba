"""Peers the MTProto tests share: the stand-in Telegram data centre (peers.DCStub), one per module."""

import pytest

from tests.mtproto import peers


@pytest.fixture(scope="module")
def dc():
    d = peers.DCStub()
    yield d
    d.close()
