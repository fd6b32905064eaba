"""`bench/run.py --baseline REV`: the relay of another commit beside this one, in the same run.

A change to the relay's I/O core is judged against the commit before it, on the same machine in the same
minutes (interleaved rounds), not against figures from another day. For each relay target of the
comparison table that runs (relay-cpython, relay-cpython-portable, relay-micropython) the run gets a twin,
NAME@REV, that starts REV's firmware with the same config; the report adds a table of both side by side.

  fetch(rev) -> Baseline: REV's firmware/ taken with `git archive` into a directory outside the repo
                (nothing in the repository or its worktrees changes); .close() removes it
  twins(baseline, targets) -> the NAME@REV targets, each placed after its original
  compare(baseline, names, med, spread, reps) -> rows of (figure, now, REV, now/REV, spreads overlap) per pair
"""

import io
import os
import shutil
import subprocess
import tarfile
import tempfile

import targets as T

# The figures a change of the I/O core must keep: CPU per byte and per connection, memory per idle
# tunnel (the MicroPython heap too), fairness.
FIGURES = ("bulk_down_cpu_s_per_GiB", "bulk_up_cpu_s_per_GiB", "churn_cpu_s_per_10k", "idle_rss_kib_per_tunnel",
           "heap_bytes_per_tunnel", "fanin_min_over_max", "fanin_min_over_median")


class BaselineError(Exception):
    pass


class Baseline:
    def __init__(self, rev, sha, where):
        self.rev = rev
        self.sha = sha
        self.where = where  # the temporary directory: firmware/ (REV's) and now/firmware (this tree's) inside it
        self.firmware = os.path.join(where, "firmware")
        self.now = os.path.join(where, "now", "firmware")
        self.label = rev if len(rev) <= 16 and "/" not in rev else sha[:10]

    def close(self):
        shutil.rmtree(self.where, ignore_errors=True)


def _git(*args, data=False):
    r = subprocess.run(["git", "-C", T.ROOT] + list(args), capture_output=True, timeout=120)
    if r.returncode != 0:
        raise BaselineError("git %s: %s" % (" ".join(args), r.stderr.decode(errors="replace").strip()))
    return r.stdout if data else r.stdout.decode().strip()


def fetch(rev):
    """REV's firmware/ in a fresh directory under the system's temp dir."""
    sha = _git("rev-parse", "--verify", "--end-of-options", rev + "^{commit}")
    tar = _git("archive", "--format=tar", sha, "firmware", data=True)
    where = tempfile.mkdtemp(prefix="relay-bench-%s-" % sha[:10])
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(where, filter="data")
    b = Baseline(rev, sha, where)
    # REV's native MTProto pump, when it has one, built from REV's own source as `make setup` builds this
    # tree's (a checkout carries no built module): else REV would run its Python path beside our native one.
    src = os.path.join(b.firmware, "relay", "runtime", "_mtpump.c")
    if os.path.exists(src):
        from relayctl import native

        built, why = native.build(True, src)
        if built is None:
            print("bench: %s's native pump not built (%s): it runs its Python path" % (b.label, why))
    # This tree's firmware (uncommitted changes too) runs from a copy beside REV's: the same kind of place,
    # so nothing but the code differs between the columns.
    shutil.copytree(T.paths.FIRMWARE, b.now, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.mpy"))
    return b


def twins(baseline, chosen):
    """chosen targets -> the same list with NAME@REV after each relay target of the comparison."""
    out = []
    for t in chosen:
        phones_runtime = getattr(t.start, "phones_runtime", None)
        if phones_runtime is not None:  # the load model's relay (bench/phones.py)
            out.append(T.Target(t.name, t.what, t.proto, T.phones.relay(phones_runtime, baseline.now), t.missing,
                                t.relay_runtime, t.scenarios, t.group, t.load, t.once))
            out.append(T.Target("%s@%s" % (t.name, baseline.label), "%s, at %s (%s)" % (t.what, baseline.rev, baseline.sha[:10]),
                                t.proto, T.phones.relay(phones_runtime, baseline.firmware), t.missing, t.relay_runtime,
                                t.scenarios, t.group, t.load, t.once))
            continue
        recipe = getattr(t.start, "recipe", None)
        if recipe is None or t.group != "compare":
            out.append(t)
            continue
        runtime, sections, limits = recipe
        fw = baseline.firmware
        needs = getattr(t.missing, "needs", ())
        out.append(T.Target(t.name, t.what, t.proto, T.relay(runtime, sections, firmware=baseline.now, **limits),
                            t.missing, t.relay_runtime, t.scenarios, t.group, t.load))
        out.append(T.Target(
            "%s@%s" % (t.name, baseline.label), "%s, at %s (%s)" % (t.what, baseline.rev, baseline.sha[:10]),
            t.proto, T.relay(runtime, sections, firmware=fw, **limits), T.relay_missing(runtime, needs, fw),
            t.relay_runtime, t.scenarios, t.group, t.load))
    return out


def _overlap(a, b, reps):
    if reps < 2 or not a or not b:
        return None  # one run each: no spread to compare with
    return a[0] <= b[1] and b[0] <= a[1]


def compare(baseline, names, med, spread, reps):
    """-> {NAME: [{figure, now, base, ratio, overlap}, ...]} for each target that ran beside its twin."""
    out = {}
    for name in names:
        twin = "%s@%s" % (name, baseline.label)
        if twin not in med or name not in med:
            continue
        rows = []
        for key in FIGURES:
            now, base = med[name].get(key), med[twin].get(key)
            if now is None and base is None:
                continue
            rows.append({"figure": key, "now": now, "base": base,
                         "ratio": round(now / base, 3) if now is not None and base else None,
                         "overlap": _overlap(spread[name].get(key), spread[twin].get(key), reps)})
        out[name] = rows
    return out
