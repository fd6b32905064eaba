"""`bench/run.py --baseline REV`: the relay of another commit runs beside this one in the same run.

HEAD's firmware comes out of `git archive` into a temporary directory; its twin target must report
the same figures as the relay of the working tree, and the comparison must land in the JSON."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "run.py"


def test_baseline_runs_beside_this_commit(tmp_path):
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout: no commit to compare with")
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--only", "relay-cpython,microsocks",
                          "--scenarios", "bulk,idle", "--baseline", "HEAD", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    (path,) = tmp_path.glob("bench-*.json")
    res = json.loads(path.read_text())
    assert "relay-cpython@HEAD" in res["targets"] and "microsocks@HEAD" not in res["targets"]
    (run,) = res["targets"]["relay-cpython@HEAD"]["runs"]
    assert run["errors"] == 0 and run["figures"]["bulk_down_cpu_s_per_GiB"] is not None
    base = res["baseline"]
    assert base["rev"] == "HEAD" and len(base["sha"]) == 40
    figs = {r["figure"] for r in base["pairs"]["relay-cpython"]}
    assert {"bulk_down_cpu_s_per_GiB", "idle_rss_kib_per_tunnel"} <= figs
    assert "This commit beside HEAD" in out.stdout
    assert not list(Path(tempfile.gettempdir()).glob("relay-bench-%s-*" % base["sha"][:10])), "archive left behind"


def test_an_unknown_revision_is_named(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--only", "relay-cpython", "--baseline",
                          "no-such-rev-xyz", "--out", str(tmp_path)], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert out.returncode != 0 and "--baseline no-such-rev-xyz" in out.stderr
