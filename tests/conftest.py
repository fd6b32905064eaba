import pytest

from tests.helpers.origin import DNSServer, EchoServer, Origin
from tests.helpers.relayproc import RUNTIMES, RelayProcess


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    return request.param


@pytest.fixture
def start_relay(tmp_path):
    started = []

    def start(runtime, config=None, extra_args=(), socks_port=None, heap=None):
        r = RelayProcess(runtime, tmp_path, config, extra_args, socks_port=socks_port, heap=heap)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


@pytest.fixture(scope="session")
def origin():
    o = Origin()
    yield o
    o.close()


@pytest.fixture(scope="session")
def origin6():
    o = Origin(size=200000, host="::1")
    yield o
    o.close()


@pytest.fixture(scope="session")
def echo():
    e = EchoServer()
    yield e
    e.close()


@pytest.fixture(scope="session")
def dns_server():
    d = DNSServer({
        "origin.test": ["127.0.0.1"],
        "v6only.test": ["::1"],
        "dual.test": ["::1", "127.0.0.1"],
        "private.test": ["10.1.2.3"],
    })
    yield d
    d.close()
