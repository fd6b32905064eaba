# MicroPython script: bring the platform up against the stand-in `network` and print, every
# 100 ms, which addresses the guard learned from the interfaces the platform brought up.
# usage: micropython mp_own.py CONFIG.json DURATION_MS  -> "RESULT {json}"
import asyncio
import json
import sys
import time

import network
from relay.platform import board as platform
from relay.proto.addr import format_ip
from relay.config import load
from relay.proto.guard import Guard
from relay.log import Log
from relay.platform import own

cfg = load(open(sys.argv[1]).read(), sys.argv[1])
duration = int(sys.argv[2])
network.SIM.networks = {"home": "secretpass1"}


class Relay:
    pass


async def main():
    t0 = time.ticks_ms()
    plat = platform.bring_up(cfg, Log("info"))
    plat.start()
    relay = Relay()
    relay.guard = Guard()
    relay.platform = plat
    watch = await own.start(relay)
    task = asyncio.create_task(watch)
    seen = []
    while time.ticks_diff(time.ticks_ms(), t0) < duration:
        now = sorted(format_ip(ip) for ip in relay.guard.sources.get("platform", []))
        if not seen or seen[-1][1] != now:
            seen.append([time.ticks_diff(time.ticks_ms(), t0), now])
        await asyncio.sleep_ms(100)
    task.cancel()
    plat.close()
    print("RESULT " + json.dumps({"seen": seen, "own": relay.guard.check(bytes([10, 0, 0, 23]))}))


asyncio.run(main())
