"""The modem's last reading on a Linux board: the small JSON file `relayctl uplink watch --status-file`
rewrites after every reading (uplink.modem_status).

A MicroPython board drives its modem itself (platform/cellular.py). On Linux the modem's AT port belongs
to one program (ModemManager, or the watcher on a port ModemManager leaves free), and two programs on one
AT port garble each other's answers: so the relay never opens the port, it reads the watcher's file.
read(path) -> the reading as written, {"error": why} when there is none, or None when no file is named.
How fresh it is, proto/fleet.py judges (the file carries its time and the watcher's interval).
"""

import json

from relay.runtime import api as runtime


def read(path):
    if not path:
        return None
    try:
        raw = runtime.read_file(path)
    except OSError as e:
        return {"error": "missing" if e.errno == 2 else "unreadable"}  # 2: ENOENT, no watcher has written it
    try:
        d = json.loads(raw)
    except ValueError:
        return {"error": "not JSON"}
    return d if type(d) is dict else {"error": "not JSON"}
