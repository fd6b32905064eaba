# MicroPython script: bring the platform up against the stand-in `network`/`machine`, play a
# scenario against it and print what happened as one "RESULT {json}" line.
# usage: micropython mp_scenario.py CONFIG.json SCENARIO.json DURATION_MS
# SCENARIO.json: {"sim": {knob: value}, "events": [[at_ms, knob, value], ...]}: knobs of network.SIM.
import asyncio
import json
import sys
import time

import machine
import network
from relay.platform import board as platform
from relay.config import load
from relay.log import Log

cfg = load(open(sys.argv[1]).read(), sys.argv[1])
scenario = json.loads(open(sys.argv[2]).read())
duration = int(sys.argv[3])
for k in scenario.get("sim", {}):
    setattr(network.SIM, k, scenario["sim"][k])


async def events(t0):
    for at, knob, value in scenario.get("events", []):
        while time.ticks_diff(time.ticks_ms(), t0) < at:
            await asyncio.sleep_ms(20)
        setattr(network.SIM, knob, value)
        print("event %s=%s" % (knob, json.dumps(value)))


async def main():
    t0 = time.ticks_ms()
    plat = platform.bring_up(cfg, Log("info"))
    plat.start()
    asyncio.create_task(events(t0))
    states = []
    last = None
    while time.ticks_diff(time.ticks_ms(), t0) < duration:
        up = plat.state()["uplink"]
        now = (up["state"], up["detail"]) if up else None
        if now != last:
            states.append([time.ticks_diff(time.ticks_ms(), t0), now[0] if now else None, now[1] if now else ""])
            last = now
        await asyncio.sleep_ms(20)
    final = plat.state()
    plat.close()
    print("RESULT " + json.dumps({"calls": network.CALLS, "machine": machine.CALLS, "states": states, "final": final}))


asyncio.run(main())
