"""Peers for the fleet tests: a real mosquitto on loopback, a SOCKS5 round trip from a chosen source
address, paho clients. Loopback only; every process started here is stopped by its PID."""

import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

CLIENT_IP = "127.0.0.77"  # the phone's address: must never reach the broker
DEST_IP = "127.0.0.88"  # where it goes
DEST_NAME = "dest-secret.test"


def need_mosquitto():
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not shutil.which(exe):
        pytest.skip("mosquitto is not installed (Debian package mosquitto; make setup installs it)")
    return exe


def wait_port(port, timeout=10.0, host="127.0.0.1"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


class Mosquitto:
    def __init__(self, conf, port, log):
        self.conf, self.port, self.log = conf, port, log
        self.proc = None
        if os.geteuid() == 0:  # as root mosquitto drops to its own user: hand it its files, as README says
            for p in [conf.parent, *conf.parent.rglob("*")]:
                shutil.chown(p, "mosquitto")

    def start(self):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([need_mosquitto(), "-c", str(self.conf)], stdout=self.logf, stderr=subprocess.STDOUT)
        try:
            wait_port(self.port)
        except RuntimeError:
            self.stop()
            raise RuntimeError("mosquitto did not start: " + open(self.log, errors="replace").read()[-2000:])

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file on the way out
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "logf", None):
            self.logf.close()


def socks_round_trip(socks_port, dest=DEST_NAME, dest_port=0, payload=b"x" * 64, timeout=10.0):
    """Connect from CLIENT_IP through the relay to dest (a name the relay resolves), echo payload once.
    -> seconds the whole thing took (connect, SOCKS5, one round trip)."""
    t0 = time.monotonic()
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((CLIENT_IP, 0))
    try:
        s.connect(("127.0.0.1", socks_port))
        s.sendall(b"\x05\x01\x00")
        assert _recv(s, 2) == b"\x05\x00"
        name = dest.encode()
        s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", dest_port))
        rep = _recv(s, 4)
        assert rep[1] == 0, f"SOCKS5 reply {rep[1]}"
        _recv(s, {1: 6, 4: 18}[rep[3]])
        s.sendall(payload)
        assert _recv(s, len(payload)) == payload
    finally:
        s.close()
    return time.monotonic() - t0


def socks_fetch(socks_port, dest_port, path="/blob"):
    """GET http://DEST_NAME:dest_port/path through the relay from CLIENT_IP with curl; -> body."""
    res = subprocess.run(["curl", "-sS", "--max-time", "30", "--interface", CLIENT_IP, "--socks5-hostname",
                          f"127.0.0.1:{socks_port}", f"http://{DEST_NAME}:{dest_port}{path}"],
                         capture_output=True, timeout=40)
    assert res.returncode == 0, res.stderr
    return res.stdout


def _recv(s, n):
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            raise ConnectionError("closed")
        out += d
    return out


class Listener:
    """paho client that keeps every message it gets: (topic, payload, retain, time)."""

    def __init__(self, port, user, password, topics, client_id=None):
        import paho.mqtt.client as mqtt

        self.msgs = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.subacks = []
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "", protocol=mqtt.MQTTv311)
        if user:
            c.username_pw_set(user, password)
        self.rc = None

        def on_connect(client, userdata, flags, reason, props):
            self.rc = reason
            if not reason.is_failure and topics:
                client.subscribe([(t, 1) for t in topics])
            self.ready.set()

        def on_subscribe(client, userdata, mid, reasons, props):
            self.subacks.extend(reasons)

        def on_message(client, userdata, m):
            with self.lock:
                self.msgs.append((m.topic, m.payload, m.retain, time.monotonic()))

        c.on_connect, c.on_message, c.on_subscribe = on_connect, on_message, on_subscribe
        c.connect("127.0.0.1", port, keepalive=30)
        c.loop_start()
        self.client = c
        assert self.ready.wait(10), "the broker did not answer"

    def take(self):
        with self.lock:
            return list(self.msgs)

    def retained(self):
        """topic -> last payload."""
        out = {}
        for t, p, _r, _ts in self.take():
            out[t] = p
        return out

    def publish(self, topic, payload, retain=True):
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(5)
        return info

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def report(listener, name, prefix="relay"):
    p = listener.retained().get(f"{prefix}/{name}/report")
    return json.loads(p) if p else None
