"""ruff over the whole tree: unused imports and names are bugs waiting to happen."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    r = subprocess.run([str(Path(sys.executable).parent / "ruff"), "check", "firmware", "host_tools", "tests", "bench"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
