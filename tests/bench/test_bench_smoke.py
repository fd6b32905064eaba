"""`make bench` must not rot: a --quick run of bench/run.py against both relay
runtimes yields every figure, a number for each, with no errors.

The figures of a quick run are too coarse to judge (32 MiB, 10 ms CPU ticks);
this only checks that the harness still measures what it claims to.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "run.py"

# every figure of merit each relay target must report (heap: MicroPython only)
COMMON = ("bulk_down_cpu_s_per_GiB", "bulk_up_cpu_s_per_GiB", "churn_cpu_s_per_10k",
          "idle_rss_kib_per_tunnel", "fanin_min_over_max", "fanin_min_over_median")
EXPECTED = {"relay-cpython": COMMON, "relay-micropython": COMMON + ("heap_bytes_per_tunnel",)}


def test_quick_bench_reports_every_figure(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--only", ",".join(EXPECTED), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    (path,) = tmp_path.glob("bench-*.json")
    res = json.loads(path.read_text())
    assert res["params"]["quick"] is True
    for name, keys in EXPECTED.items():
        assert name in res["targets"], res.get("skipped")
        (run,) = res["targets"][name]["runs"]
        assert run["errors"] == 0, (name, run["scenarios"])
        for key in keys:
            v = run["figures"][key]
            assert isinstance(v, (int, float)) and v >= 0, (name, key, v)
        assert 0 < run["figures"]["fanin_min_over_max"] <= 1
        idle = run["scenarios"]["idle"]
        assert idle["opened"] == res["params"]["idle_n"] == idle["still_open_after_hold"]
        assert run["scenarios"]["churn"]["ok"] == res["params"]["churn_total"]
        for direction in ("download", "upload"):
            assert run["scenarios"]["bulk"][direction]["bytes"] == res["params"]["bulk_mib"] << 20
    # a relay tunnel costs heap on MicroPython; zero would mean the status page went unread
    assert res["medians"]["relay-micropython"]["heap_bytes_per_tunnel"] > 100
    # the CPython relay has no device heap figure, and the table says so rather than inventing one
    assert res["medians"]["relay-cpython"]["heap_bytes_per_tunnel"] is None
    assert "Goals" in out.stdout and "relay-micropython" in out.stdout
