"""MicroPython: a MemoryError while a new connection's session is set up (hundreds of half-open SOCKS
connections on a small heap) must not end the listener: that connection is dropped, the pause counted
(accept_pauses), and accepting goes on. On the unix port, as the boards run it."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_listener_survives_memory_error_in_on_conn():
    env = dict(os.environ, MICROPYPATH=f"{ROOT / 'firmware'}:.frozen")
    r = subprocess.run([str(Path(sys.executable).parent / "micropython"), str(Path(__file__).parent / "mp_listener_memory.py")],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "listener OK" in r.stdout, r.stdout + r.stderr
