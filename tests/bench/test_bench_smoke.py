"""`make bench` must not rot: a --quick run of bench/run.py against both relay
runtimes yields every figure, a number for each, with no errors.

The figures of a quick run are too coarse to judge (32 MiB, 10 ms CPU ticks);
this only checks that the harness still measures what it claims to.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


# the shaped link of issue 7, both runtimes, shaping on and (MicroPython) off
SHAPED = ("shaped-cpython", "shaped-micropython", "unshaped-micropython")
SHAPED_FIGURES = ("shaped_p99_x", "shaped_idle_p50_ms", "shaped_idle_p99_ms", "shaped_busy_p50_ms",
                  "shaped_busy_p99_ms", "shaped_interactive_kept", "shaped_bulk_MBps", "shaped_link_use",
                  "shaped_bulk_share", "shaped_inter_share_min", "shaped_inter_share_max", "shaped_cpu_s",
                  "shaped_cpu_s_per_GiB")
HEAP_FIGURES = ("shaped_heap_start", "shaped_heap_open", "shaped_heap_busy")


def test_quick_shaped_link_reports_latency_shares_and_cost(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--only", ",".join(SHAPED), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=90, cwd=ROOT, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    (path,) = tmp_path.glob("bench-*.json")
    res = json.loads(path.read_text())
    for name in SHAPED:
        assert name in res["targets"], res.get("skipped")
        assert res["targets"][name]["scenarios"] == ["shaped"]  # the link targets run only this
        (run,) = res["targets"][name]["runs"]
        assert run["errors"] == 0, (name, run["scenarios"])
        keys = SHAPED_FIGURES + (HEAP_FIGURES if "micropython" in name else ())
        for key in keys:
            v = run["figures"][key]
            assert isinstance(v, (int, float)) and v >= 0, (name, key, v)
        sh = run["scenarios"]["shaped"]
        n = res["params"]["shaped_clients"]
        assert sh["clients"] == n + 1 and len(sh["share_busy"]) == n + 1
        assert abs(sum(sh["share_busy"]) - 1) < 0.01
        # every interactive client made round trips in both phases, and the bulk flow ran throughout
        assert min(sh["idle"]["per_client"]) > 0 and min(sh["busy"]["per_client"]) > 0
        assert sh["bulk_alive_at_end"]
        # the link (2 MB/s) was the limit: the bulk download filled it and did not pass it by much
        assert 0.5 < sh["link_use_down"] < 1.3, (name, sh["link_use_down"])
    # the feature-cost table compares shaping on and off on MicroPython
    costs = {(c["feature"], c["figure"]) for c in res["feature_cost"]}
    assert any(fig == "shaped_heap_busy" for _, fig in costs), res["feature_cost"]
    assert "shaped_p99_x" in {g["figure"] for g in res["goals"]}
    assert "Shaped link" in out.stdout and "Feature cost" in out.stdout
    # CPython has no device heap to report
    assert res["medians"]["shaped-cpython"]["shaped_heap_busy"] is None


def test_quick_danted_peer(tmp_path):
    if not shutil.which("danted"):
        pytest.skip("danted is not installed (make bench installs dante-server)")
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--only", "danted", "--scenarios", "bulk,churn",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    (path,) = tmp_path.glob("bench-*.json")
    res = json.loads(path.read_text())
    (run,) = res["targets"]["danted"]["runs"]
    assert run["errors"] == 0, run["scenarios"]
    assert run["scenarios"]["churn"]["ok"] == res["params"]["churn_total"]
    assert run["scenarios"]["bulk"]["download"]["bytes"] == res["params"]["bulk_mib"] << 20
    assert run["figures"]["churn_cpu_s_per_10k"] > 0  # danted's forked processes are in the measured tree


MT_RELAYS = ("relay-mtproto-cpython", "relay-mtproto-dd-cpython", "relay-mtproto-micropython")
MT_PEERS = ("mtprotoproxy", "mtprotoproxy-dd", "mtprotoproxy-nofast")  # the bench extra; reported as skipped without it


def test_quick_mtproto_bulk(tmp_path):
    """Issue 8: the MTProto bulk through the relay (both runtimes, plain and dd secrets) and
    mtprotoproxy, beside the relay's SOCKS5 bulk, in one --quick run. The stand-in DC checks a
    trailer encrypted at the end of each transfer, so a stream that lost a byte is an error."""
    only = ("relay-cpython",) + MT_RELAYS + MT_PEERS
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--scenarios", "bulk", "--only", ",".join(only),
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    (path,) = tmp_path.glob("bench-*.json")
    res = json.loads(path.read_text())
    ran = [n for n in only if n in res["targets"]]
    for name in MT_PEERS:
        assert name in ran or "mtprotoproxy is not installed" in res["skipped"][name]
    assert set(("relay-cpython",) + MT_RELAYS) <= set(ran), res.get("skipped")
    for name in ran:
        (run,) = res["targets"][name]["runs"]
        assert run["errors"] == 0, (name, run["scenarios"])
        bulk = run["scenarios"]["bulk"]
        mib = res["params"]["bulk_mib"] if name == "relay-cpython" else bulk["mib"]
        if name.startswith("relay-mtproto"):
            assert mib == res["params"]["mt_mp_mib" if "micropython" in name else "mt_mib"]
        for direction in ("download", "upload"):
            assert bulk[direction]["bytes"] == int(mib * (1 << 20)), (name, direction, bulk[direction])
            assert bulk[direction]["error"] is None
        for key in ("bulk_down_cpu_s_per_GiB", "bulk_up_cpu_s_per_GiB"):
            v = run["figures"][key]  # 16-32 MiB is a few 10 ms ticks: 0 is possible, None is not
            assert isinstance(v, (int, float)) and v >= 0, (name, key, v)
        if name != "relay-cpython":  # the MTProto targets run the bulk only
            assert set(run["scenarios"]) == {"bulk"}
            assert run["figures"]["churn_cpu_s_per_10k"] is None
    ratio = res["ratios"]["relay-mtproto-cpython/relay-cpython"]
    assert set(ratio) >= {"bulk_down_cpu_s_per_GiB", "bulk_up_cpu_s_per_GiB"}
    if "mtprotoproxy" in ran:
        assert "relay-mtproto-cpython/mtprotoproxy" in res["ratios"]
    assert "MTProto bulk (issue 8)" in out.stdout and "relay-mtproto-cpython/relay-cpython" in out.stdout


def test_quick_engine_cost_beside_the_direct_path(tmp_path):
    """Issue 18: make bench prints each engine's CPU per GiB and added round trip beside direct."""
    if not (shutil.which("ss-local") and shutil.which("trojan")):
        pytest.skip("the engines are installed by make setup")
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--only", "relay-cpython", "--scenarios", "churn",
                          "--engines", "--out", str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    (path,) = tmp_path.glob("bench-*.json")
    eng = json.loads(path.read_text())["engines"]
    for name in ("shadowsocks", "trojan"):
        r = eng["paths"][name]
        assert r["complete"] and r["cpu_s_per_GiB"] > 0 and r["added_rtt_ms"] is not None, r
    assert eng["paths"]["direct"]["complete"]
    assert "Uplink engines on loopback" in out.stdout and "iodine: not measured" in out.stdout


PHONES = ("phones-direct", "phones-relay-cpython", "phones-relay-micropython")


def test_quick_phones_load_model(tmp_path):
    """Issue 16's load model in miniature: 20 phones (MicroPython 10) from their own 127.x addresses,
    ee handshakes, messages both ways, a download (whose trailer proves the ciphers stayed aligned),
    straight to the DC and through the relay on both runtimes (and mtprotoproxy when installed)."""
    only = PHONES + ("phones-mtprotoproxy",)
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--scenarios", "phones", "--only", ",".join(only),
                          "--phones", "20", "--phones-mp", "10", "--phones-ramp", "2", "--phones-settle", "1",
                          "--phones-measure", "3", "--phones-mean", "1", "--phones-media-rate", str(4 << 20),
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=150, cwd=ROOT,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    (path,) = tmp_path.glob("bench-*.json")
    res = json.loads(path.read_text())
    ran = [n for n in only if n in res["targets"]]
    assert set(PHONES) <= set(ran), res.get("skipped")
    if "phones-mtprotoproxy" not in ran:
        assert "mtprotoproxy is not installed" in res["skipped"]["phones-mtprotoproxy"]
    for name in ran:
        (run,) = res["targets"][name]["runs"]
        assert run["errors"] == 0, (name, run["scenarios"])
        ph = run["scenarios"]["phones"]
        n = 10 if "micropython" in name else 20
        assert ph["kind"] == "ee" and ph["phones"] == ph["phones_up"] == n, ph
        assert ph["conns_up"] == ph["conns_wanted"] >= 4 * n  # 4-7 each, all up
        assert ph["samples"] > 0 and 0 < ph["p50_ms"] <= ph["p99_ms"]
        assert ph["pushes_answered"] > 0  # the DC's updates came back acknowledged
        assert ph["downloads"] >= 1  # and a media download arrived whole, its trailer aligned
        if name != "phones-direct":
            assert isinstance(ph["rss_kib_per_phone"], (int, float)) and ph["cpu_s_per_kphone_min"] >= 0
    med = res["medians"]
    # what the relay adds is read against the direct run of the same phone count, and only that
    assert isinstance(med["phones-relay-cpython"]["phones_added_p99_ms"], (int, float))
    assert med["phones-relay-micropython"]["phones_added_p99_ms"] is None
    assert med["phones-relay-micropython"]["phones_heap_per_phone"] is not None
    assert med["phones-relay-cpython"]["phones_heap_per_phone"] is None
    assert "Telegram-like load (issue 16)" in out.stdout
    assert {g["figure"] for g in res["goals"]} >= {"phones_added_p99_ms", "phones_rss_mib", "phones_errors"}
