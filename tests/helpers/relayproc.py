"""Start the relay as a real process under CPython or the MicroPython unix port."""

import json
import os
import select
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

from relayctl.cmd_run import relay_command, stop_signal as _stop_signal  # noqa: E402

# "cpython" runs the fast path (loop callbacks, splice); "cpython-portable" the task pumps MicroPython runs.
RUNTIMES = ("cpython", "cpython-portable", "micropython")


def stop_signal(name):
    """The signal that stops the relay under runtime name cleanly (SIGINT for the MicroPython unix port)."""
    return _stop_signal(split_runtime(name)[0])


def split_runtime(name):
    """'cpython-portable' -> ('cpython', {'io': {'backend': 'portable'}})."""
    if name == "cpython-portable":
        return "cpython", {"io": {"backend": "portable"}}
    return name, {}


_handed_out = {}  # port -> None, in the order handed out


def free_port(family=socket.AF_INET, kind=socket.SOCK_STREAM):
    """A port to listen on, below the kernel's ephemeral range (32768+), so the many client
    connections of a test run cannot take it between this check and the relay's bind.
    Never the same port twice in one test process: twenty relays started at once take sixty
    ports, and two of them drawing the same free port before either bound it was a 1-in-7 chance."""
    import random

    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    for _ in range(200):
        port = random.randint(20000, 32000)
        if port in _handed_out:
            continue
        with socket.socket(family, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            _handed_out[port] = None
            if len(_handed_out) > 6000:  # a long run: forget the oldest half rather than run dry
                for old in list(_handed_out)[:3000]:
                    del _handed_out[old]
            return port
    raise RuntimeError("no free port found in 20000-32000")


def deep_merge(base, extra):
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


class PortTaken(RuntimeError):
    pass


class RelayProcess:
    """A running relay. .socks / .http / .status are ports; stop() returns everything it printed."""

    def __init__(self, runtime, tmp_path, config=None, extra_args=(), ready_timeout=20, socks_port=None, heap=None,
                 env=None):
        """heap: the MicroPython heap size ("8M"), as a small board would have; None: relay_command's.
        env: variables to set for the relay on top of relay_command's (RELAY_NATIVE=off)."""
        self.heap = heap
        self.extra_env = env or {}
        for attempt in range(3):
            try:
                return self._start(runtime, tmp_path, config, extra_args, ready_timeout, socks_port)
            except PortTaken:
                if attempt == 2 or socks_port:
                    raise

    def _start(self, runtime, tmp_path, config, extra_args, ready_timeout, socks_port):
        self.runtime = runtime
        self.socks = socks_port or free_port()
        self.http = free_port()
        self.status = free_port()
        base = {
            "socks": {"host": "127.0.0.1", "port": self.socks},
            "http": {"host": "127.0.0.1", "port": self.http},
            "status": {"enabled": True, "host": "127.0.0.1", "port": self.status},
            "guard": {"allow": ["127.0.0.0/8", "::1/128"]},
            "limits": {"handshake_timeout": 5, "buffer": 65536},
        }
        runtime, backend = split_runtime(runtime)
        self.python = runtime
        self.config = deep_merge(deep_merge(base, backend), config or {})
        self.config_path = tmp_path / f"config-{runtime}-{self.socks}.json"
        self.config_path.write_text(json.dumps(self.config))
        argv, env = relay_command(runtime, str(self.config_path), list(extra_args))
        env = dict(env, **self.extra_env)
        if self.heap and runtime == "micropython":
            argv = [("heapsize=" + self.heap) if a.startswith("heapsize=") else a for a in argv]
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.output = b""
        self.ready_line = self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                self.output += chunk
                for line in self.output.decode(errors="replace").splitlines():
                    if line.startswith("relay ready"):
                        return line
            if self.proc.poll() is not None:
                break
        try:
            self.proc.wait(5)  # its stdout ended: it is exiting; read what it said once it has
        except subprocess.TimeoutExpired:
            pass
        err = self.proc.stderr.read() if self.proc.poll() is not None else b""
        self.stop()
        # CPython says "Address already in use", the MicroPython unix port "EADDRINUSE".
        if b"Address already in use" in err or b"EADDRINUSE" in err:
            raise PortTaken(err.decode(errors="replace"))
        raise RuntimeError(f"relay ({self.runtime}) did not get ready: {self.output!r} {err!r}")

    def status_json(self, gc=False):
        url = f"http://127.0.0.1:{self.status}/api/status" + ("?gc=1" if gc else "")
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.stdout.closed:
            return self.output.decode(errors="replace"), self.stderr
        if self.proc.poll() is None:
            self.proc.send_signal(_stop_signal(self.python))
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rest_out = self.proc.stdout.read() if self.proc.stdout else b""
        rest_err = self.proc.stderr.read() if self.proc.stderr else b""
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.output += rest_out
        self.stderr = rest_err.decode(errors="replace")
        return self.output.decode(errors="replace"), self.stderr
