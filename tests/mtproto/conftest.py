"""Peers the MTProto tests share, one per module: the stand-in Telegram data centre (peers.DCStub) and a mask
site that answers like a web server (probes.WebLikeMask)."""

import pytest

from tests.mtproto import peers
from tests.mtproto.probes import WebLikeMask


@pytest.fixture(scope="module")
def dc():
    d = peers.DCStub()
    yield d
    d.close()


@pytest.fixture(scope="module")
def mask():
    m = WebLikeMask(idle_s=1.5)
    yield m
    m.close()
