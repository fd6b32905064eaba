#!/usr/bin/env python3
"""Summarise a py-spy collapsed-stack file (bench/run.py --profile): where the relay's CPU went.

    bench/folded.py bench/results/bench-<stamp>/relay-cpython.r1.folded [--lines] [--top 30]

Prints each function's share of the samples, self (on top of the stack) and
inclusive (anywhere in it). By function by default; --lines keeps py-spy's
per-line frames. A C call (a syscall, uvloop) counts as self time of the
Python frame that made it.
"""

import argparse
import collections
import re


def frame_key(frame, lines):
    return frame if lines else re.sub(r":\d+\)$", ")", frame)


def summarise(path, lines=False):
    total = 0
    own = collections.Counter()
    incl = collections.Counter()
    with open(path) as f:
        for row in f:
            stack, _, n = row.rstrip("\n").rpartition(" ")
            if not stack or not n.isdigit():
                continue
            n = int(n)
            total += n
            frames = [frame_key(x, lines) for x in stack.split(";")]
            own[frames[-1]] += n
            for x in set(frames):
                incl[x] += n
    return total, own, incl


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path")
    ap.add_argument("--lines", action="store_true", help="one row per source line, not per function")
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args(argv)
    total, own, incl = summarise(a.path, a.lines)
    print("%d samples" % total)
    for title, counts in (("self", own), ("inclusive", incl)):
        print("-- " + title)
        for name, n in counts.most_common(a.top):
            print("%5.1f%%  %s" % (100.0 * n / max(total, 1), name))


if __name__ == "__main__":
    main()
