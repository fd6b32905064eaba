"""Out of file descriptors, the relay pauses accepting instead of spinning, on each runtime.

The relay runs with `ulimit -n 64` (soft and hard, so CPython cannot lift it) and 150 clients
connect and wait: the first few dozen take every descriptor, the rest wait in the listen backlog,
so the listener stays readable while accept() fails with EMFILE. MicroPython's accept loop used
to go straight back to the poller and spin at full CPU (growing its heap); now each listener
pauses and counts the pause. Once the clients leave, the relay serves again at once.
"""

import os
import resource
import socket
import subprocess
import time

from tests.helpers.relayproc import RelayProcess
from tests.integration.test_abuse import served_promptly

LIMIT = 64


class LimitedRelay(RelayProcess):
    """A RelayProcess whose descriptors are capped before it starts."""

    def _start(self, *a, **kw):
        real = subprocess.Popen

        def popen(argv, **opts):
            opts["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))
            return real(argv, **opts)

        subprocess.Popen = popen
        try:
            return super()._start(*a, **kw)
        finally:
            subprocess.Popen = real


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_accept_pauses_when_descriptors_run_out(runtime, tmp_path, origin):
    relay = LimitedRelay(runtime, tmp_path, {"limits": {"handshake_timeout": 30, "backlog": 256}})
    clients = []
    try:
        try:
            for _ in range(150):
                clients.append(socket.create_connection(("127.0.0.1", relay.socks), timeout=5))
            time.sleep(0.5)  # the relay has taken what it can; the rest wait in the backlog
            c0, t0 = cpu_seconds(relay.proc.pid), time.monotonic()
            time.sleep(2)
            share = (cpu_seconds(relay.proc.pid) - c0) / (time.monotonic() - t0)
            assert relay.alive()
            assert share < 0.5, f"the relay used {share:.0%} of a CPU while out of descriptors"
        finally:
            for c in clients:
                c.close()
        time.sleep(0.5)
        served_promptly(relay, origin)
        assert relay.status_json()["accept_pauses"] > 0
    finally:
        relay.stop()
