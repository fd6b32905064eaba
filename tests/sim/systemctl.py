#!/usr/bin/env python3
"""systemctl for one installed unit, on a machine without systemd: `cat UNIT` and `reload UNIT`.

Installed by a test as `systemctl` on relayctl's PATH. state.json beside this script:
    {"units": {"relay.service": "/path/to/unit text"}, "mainpid": {"relay.service": PID}}
`reload` runs the unit's own ExecReload= lines the way systemd does: a leading "+" (full privileges) dropped,
$MAINPID replaced, $$ -> $ and %% -> %, split like a command line, exit status passed on.
"""

import json
import shlex
import subprocess
import sys
from pathlib import Path

STATE = Path(__file__).resolve().with_name("state.json")


def main(argv):
    state = json.loads(STATE.read_text())
    if len(argv) != 2 or argv[0] not in ("cat", "reload"):
        print(f"systemctl (test stand-in): unsupported: {' '.join(argv)}", file=sys.stderr)
        return 1
    verb, unit = argv
    if not unit.endswith(".service"):
        unit += ".service"
    path = state["units"].get(unit)
    if path is None:
        print(f"No files found for {unit}.", file=sys.stderr)
        return 1
    text = Path(path).read_text()
    if verb == "cat":
        print(f"# /etc/systemd/system/{unit}")
        print(text, end="")
        return 0
    for line in text.splitlines():
        if not line.startswith("ExecReload="):
            continue
        cmd = line.split("=", 1)[1].lstrip("+-@!")
        cmd = cmd.replace("$MAINPID", str(state["mainpid"][unit])).replace("$$", "$").replace("%%", "%")
        r = subprocess.run(shlex.split(cmd))
        if r.returncode != 0:
            print(f"Job for {unit} failed (ExecReload exited {r.returncode}).", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
