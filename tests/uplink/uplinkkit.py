"""Helpers for the uplink tests: the real relayctl CLI as a process, golden-file comparison."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"
FAMILIES = ("quectel", "simcom", "huawei")


def relayctl(*args, timeout=60, env=None, stdout=None):
    """Run `relayctl uplink ...` as a process, as a volunteer would."""
    e = dict(os.environ, NO_COLOR="1")
    e.update(env or {})
    kw = {"stdout": stdout, "stderr": subprocess.PIPE} if stdout is not None else {"capture_output": True}
    return subprocess.run([sys.executable, "-m", "relayctl.cli", "uplink", *map(str, args)],
                          text=True, timeout=timeout, cwd=ROOT, env=e, **kw)


def golden(name, text):
    """Compare text with golden/<name>; UPDATE_GOLDEN=1 rewrites the file instead."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: run with UPDATE_GOLDEN=1 once and review it"
    assert text == path.read_text(), f"{name} differs from its golden file"
