"""Fleet reporting at its edges, on both runtimes: a broker that accepts and never answers must not
slow the relay; TLS to the broker with a CA file, and a broker whose certificate the CA did not sign."""

import datetime
import json
import statistics
import time

import pytest

from tests.fleet.fleetkit import DEST_IP, DEST_NAME, Listener, Mosquitto, need_mosquitto, socks_round_trip
from tests.helpers.origin import EchoServer, ThreadedTCP
from tests.helpers.relayproc import RelayProcess, free_port

RUNTIMES = ("cpython", "micropython")


@pytest.fixture(scope="module")
def echo():
    e = EchoServer(host=DEST_IP)
    yield e
    e.close()


def relay_cfg(port, name, **fleet):
    f = {"enabled": True, "broker": "127.0.0.1", "port": port, "name": name, "interval": 1, "keepalive": 4,
         "retry_max": 2}
    f.update(fleet)
    return {"fleet": f, "dns": {"hosts": {DEST_NAME: [DEST_IP], "localhost": ["127.0.0.1"]}},
            "limits": {"tunnels": 8, "sessions": 16, "buffer": 16384}}


class SilentBroker(ThreadedTCP):
    """Accepts TCP connections, reads nothing, answers nothing: a broker stuck on a dying link."""

    def __init__(self):
        super().__init__()
        self.conns = []

    def serve(self, conn):
        self.conns.append(conn)  # held open, never read


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_broker_that_never_answers_does_not_slow_the_relay(runtime, tmp_path, echo):
    silent = SilentBroker().start()
    quiet = RelayProcess(runtime, tmp_path, {"dns": {"hosts": {DEST_NAME: [DEST_IP]}}})
    stuck = RelayProcess(runtime, tmp_path, relay_cfg(silent.port, "stuck"))
    try:
        time.sleep(0.5)
        assert silent.conns, "the relay never tried the broker"
        base = [socks_round_trip(quiet.socks, dest_port=echo.port) for _ in range(15)]
        with_broker = [socks_round_trip(stuck.socks, dest_port=echo.port) for _ in range(15)]
        assert stuck.status_json()["fleet"]["state"] == "connecting"  # still waiting for a CONNACK
        assert statistics.median(with_broker) < statistics.median(base) * 3 + 0.05
    finally:
        stuck.stop()
        quiet.stop()
        silent.close()


def _cert(subject, issuer_key, issuer_name, key, ca=False, san=None):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    need_mosquitto()
    import shutil
    import tempfile
    from pathlib import Path

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    tmp = tmp_path_factory.mktemp("tls")
    d = Path(tempfile.mkdtemp(prefix="relay-fleet-tls-"))  # mosquitto (as its own user) must read it
    pem = serialization.Encoding.PEM
    ca_key, other_key, srv_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _cert("Fleet CA", ca_key, "Fleet CA", ca_key, ca=True)
    other = _cert("Someone else's CA", other_key, "Someone else's CA", other_key, ca=True)
    srv = _cert("localhost", ca_key, "Fleet CA", srv_key, san="localhost")
    der = serialization.Encoding.DER
    (tmp / "ca.pem").write_bytes(ca.public_bytes(pem))  # CPython reads PEM (and DER)
    (tmp / "other-ca.pem").write_bytes(other.public_bytes(pem))
    (tmp / "ca.der").write_bytes(ca.public_bytes(der))  # MicroPython's mbedtls reads DER: relayctl build converts
    (tmp / "other-ca.der").write_bytes(other.public_bytes(der))
    (d / "server.pem").write_bytes(srv.public_bytes(pem))
    (d / "server.key").write_bytes(srv_key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                                         serialization.NoEncryption()))
    port = free_port()
    (d / "mosquitto.conf").write_text(f"allow_anonymous true\npersistence false\nlistener {port} 127.0.0.1\n"
                                      f"certfile {d}/server.pem\nkeyfile {d}/server.key\n"
                                      f"listener {port + 1} 127.0.0.1\n")  # plain, for the test's own listener
    m = Mosquitto(d / "mosquitto.conf", port, tmp / "mosquitto.log")
    m.start()
    yield tmp, port
    m.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tls_to_the_broker_checks_its_certificate(runtime, tmp_path, tls_broker):
    tmp, port = tls_broker
    ext = "der" if runtime == "micropython" else "pem"
    good = RelayProcess(runtime, tmp_path, relay_cfg(port, "tls-" + runtime, broker="localhost", tls=True,
                                                      ca_file=str(tmp / f"ca.{ext}")))
    bad = RelayProcess(runtime, tmp_path, relay_cfg(port, "mitm-" + runtime, broker="localhost", tls=True,
                                                     ca_file=str(tmp / f"other-ca.{ext}")))
    watch = Listener(port + 1, None, None, ["relay/#"])
    try:
        got = None
        end = time.monotonic() + 15
        while time.monotonic() < end and not got:
            got = watch.retained().get(f"relay/tls-{runtime}/report")
            time.sleep(0.2)
        assert got, good.status_json()["fleet"]
        assert json.loads(got)["runtime"] == runtime
        st = bad.status_json()["fleet"]
        assert st["connects"] == 0 and st["failures"] >= 1 and st["error"], st
        assert f"relay/mitm-{runtime}/report" not in watch.retained()
    finally:
        watch.close()
        good.stop()
        bad.stop()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tls_to_the_broker_through_an_upstream(runtime, tmp_path, tls_broker):
    """fleet.tls on a relay chained through an upstream: the TLS runs inside the upstream's tunnel (CPython:
    a memory BIO over the connection; MicroPython: on the socket the SOCKS handshake left), checked as ever."""
    tmp, port = tls_broker
    ext = "der" if runtime == "micropython" else "pem"
    far = RelayProcess("cpython", tmp_path, {})
    cfg = relay_cfg(port, "tls-up-" + runtime, broker="localhost", tls=True, ca_file=str(tmp / f"ca.{ext}"))
    cfg["upstream"] = {"proxies": [f"socks5://127.0.0.1:{far.socks}"]}
    relay = RelayProcess(runtime, tmp_path, cfg)
    watch = Listener(port + 1, None, None, ["relay/#"])
    try:
        got = None
        end = time.monotonic() + 15
        while time.monotonic() < end and not got:
            got = watch.retained().get(f"relay/tls-up-{runtime}/report")
            time.sleep(0.2)
        assert got, relay.status_json()["fleet"]
        assert far.status_json()["tunnels_total"] >= 1
    finally:
        watch.close()
        relay.stop()
        far.stop()
