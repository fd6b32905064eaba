"""The two long conversations with a modem: `probe` (read everything) and `setup`
(PIN, radio, roaming, APN, operator, then wait for registration).

Input: a Transport, options, and a progress callable. Output: JSON-ready dicts.
A modem that restarts mid-setup (ModemReset, or its USB port vanishing) is waited
for and the setup starts over, at most twice; the PIN rule in modem.py holds across
restarts (a PIN the SIM accepted may be entered again after a restart, a rejected one never).
"""

import time

from relayctl import mccmnc, out
from relayctl.errors import CliError
from relayctl.modem import signal as sig
from relayctl.modem.at import ATTimeout, ModemReset
from relayctl.modem.modem import Modem
from relayctl.modem.transport import PortGone

MAX_RESTARTS = 2


def probe(modem):
    ident = modem.start()
    result = {"modem": ident}
    state = modem.sim_state()
    sim = {"state": state}
    if state in ("SIM PIN", "SIM PUK"):
        pin_left, puk_left = modem.pin_retries()
        sim["pin_tries_left"] = pin_left
        sim["puk_tries_left"] = puk_left
    imsi = modem.imsi() if state == "READY" else None
    if imsi:
        sim["imsi"] = imsi
        sim["home"] = mccmnc.from_imsi(imsi)
    result["sim"] = sim
    result["registration"] = modem.registration()
    result["operator"] = modem.operator()
    result["signal"] = modem.signal()
    result["network_time"] = modem.clock()
    return result


def _recover(modem, why):
    out.warn(f"modem restarted during setup ({why}); waiting for it to come back, then starting over")
    if isinstance(why, PortGone) and hasattr(modem.t, "reopen"):
        modem.t.reopen(wait=60)
    time.sleep(0.5)
    modem.t.drain()
    try:
        modem.at.sync(attempts=30, per_try=1.0)
    except ATTimeout:
        raise CliError("modem did not come back after restarting: check its power (LTE modems draw 2 A peaks; "
                       "use a powered USB hub) and run setup again", 4)


def setup(transport, opts, progress=None, log=None):
    """opts: pin, force, pin_retry_unknown_tries, pin_log (pinlog.PinLog), apn, user, password, roaming,
    operator, rat, timeout."""
    modem = Modem(transport, log=log)
    restarts = 0
    while True:
        try:
            return _setup_once(modem, opts, progress)
        except (ModemReset, PortGone) as e:
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise CliError(f"modem restarted {restarts} times during setup: a weak power supply or a crashing "
                               "firmware; power it from a powered hub or its own supply and try again", 4)
            _recover(modem, e)


def _setup_once(modem, opts, progress):
    steps = []
    ident = modem.start()
    steps.append(f"modem: {ident['manufacturer']} {ident['model']} ({modem.family['label']})")
    sim = modem.unlock(opts.get("pin"), force=opts.get("force", False), pin_log=opts.get("pin_log"),
                       retry_unknown=opts.get("pin_retry_unknown_tries", False))
    steps.append("SIM: PIN accepted" if sim == "pin-entered" else "SIM: ready (no PIN asked)")
    imsi = modem.imsi()
    home = mccmnc.from_imsi(imsi) if imsi else None
    if home:
        steps.append(f"SIM home network: {home['plmn']} {home['operator']}, {home['country']}")
    if opts.get("rat"):
        if modem.set_rat(opts["rat"]):
            steps.append(f"radio: {opts['rat']}")
        else:
            steps.append(f"radio: {opts['rat']} only through the operator choice (no vendor switch on this modem)")
    if opts.get("roaming"):
        if modem.set_roaming(True):
            steps.append("roaming: allowed in the modem")
        else:
            steps.append("roaming: this modem has no roaming switch; it follows the SIM and the network")
    modem.set_apn(opts["apn"], opts.get("user"), opts.get("password"))
    steps.append(f"APN: {opts['apn']}" + (" with user/password" if opts.get("user") else ""))
    if opts.get("operator"):
        modem.select_operator(opts["operator"], opts.get("rat"))
        steps.append(f"operator: {opts['operator']}")
    reg = wait_registered(modem, opts.get("timeout", 180), progress, opts)
    oper = modem.operator()
    result = {
        "modem": ident,
        "sim": {"imsi": imsi, "home": home, "pin_entered": sim == "pin-entered"},
        "registration": reg,
        "operator": oper,
        "signal": modem.signal(),
        "network_time": modem.clock(),
        "steps": steps,
    }
    if reg["stat"] == 5 and not opts.get("roaming"):
        out.warn("registered while roaming but --roaming was not given: the rendered data-connection configs "
                 "will refuse roaming; run setup again with --roaming")
    return result


def wait_registered(modem, timeout, progress, opts):
    start = time.monotonic()
    last = None
    while True:
        reg = modem.registration()
        waited = time.monotonic() - start
        if reg["data"]:
            return reg
        last = reg
        if progress:
            s = modem.signal()
            progress(f"waiting for the network: {reg['state']}, {sig.describe(s)}, {waited:.0f}/{timeout:.0f} s")
        if waited >= timeout:
            break
        time.sleep(min(1.0, max(0.1, timeout / 20)))
    if last["stat"] == 3:
        hint = "run again with --roaming" if not opts.get("roaming") else \
            "pick another network with --operator MCCMNC (see `relayctl uplink scan`)"
        raise CliError(f"network denied registration after {timeout:.0f} s: roaming is not allowed in the modem, "
                       f"the SIM's operator has no roaming deal here, or the network bars this SIM; {hint}", 5)
    s = modem.signal()
    raise CliError(f"not registered after {timeout:.0f} s ({last['state']}, {sig.describe(s)}): weak signal, "
                   "a radio restricted with --rat to one the towers here lack, or a data-less SIM; aim the antenna "
                   "with `relayctl uplink watch`, try --rat auto, or check the SIM in a phone", 5)

