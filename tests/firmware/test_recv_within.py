"""runtime.recv_within, the one timed read: its bytes stay the caller's after the next read (MicroPython's
recv() lends a view of one shared buffer). Deterministic: two real loopback connections, read in turn."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "mp_recv_within.py"


@pytest.mark.parametrize("python", ["cpython", "micropython"])
def test_a_timed_read_keeps_its_bytes_after_the_next_read(python):
    if python == "micropython":
        argv = [str(Path(sys.executable).parent / "micropython"), str(SCRIPT)]
        env = dict(os.environ, MICROPYPATH=f"{ROOT / 'firmware'}:.frozen")
    else:
        argv = [sys.executable, str(SCRIPT)]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "firmware"))
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "recv_within OK" in r.stdout, r.stdout + r.stderr
