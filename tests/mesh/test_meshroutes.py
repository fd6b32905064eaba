"""Routes, babeld dumps and phone identities on transcripts, under CPython and the MicroPython unix port."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "firmware"))

from tests.mesh import mp_meshroutes  # noqa: E402


def test_transcripts_cpython():
    mp_meshroutes.run()


def test_transcripts_micropython():
    env = dict(os.environ, MICROPYPATH=f"{ROOT / 'firmware'}:.frozen")
    r = subprocess.run([str(Path(sys.executable).parent / "micropython"), str(Path(__file__).parent / "mp_meshroutes.py")],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "meshroutes OK" in r.stdout, r.stdout + r.stderr
