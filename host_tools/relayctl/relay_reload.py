"""Make a running relay read the config.json just written, and check that it did.

An installed relay (the systemd unit of images/linux.py) does not read /opt/relay/config.json: it runs on a
0600 copy in its dynamic user's state directory that only `systemctl reload relay` refreshes (copy, then
SIGHUP). POST /api/reload there makes it re-read the stale copy. So: when a systemd unit copies from this
file, reload through systemd; otherwise ask the relay itself (POST /api/reload, which also works where
there are no signals). Then look at what the relay runs (GET /api/status) before saying it took the file.

reload_and_check(path, cfg) -> a sentence saying what happened (CliError when the relay refused or runs
something else).
"""

import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request

from relayctl.errors import CliError

UNIT = "relay.service"  # images/linux.py installs it under this name
_WAIT_S = 8  # SIGHUP is handled by the relay's loop: give it a moment to re-read


def _systemd_unit_reading(path):
    """The unit's text when an installed relay.service copies or reads path; None otherwise."""
    exe = shutil.which("systemctl")
    if exe is None:
        return None
    try:
        r = subprocess.run([exe, "cat", UNIT], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return None
    real = os.path.realpath(path)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith(("ExecStart", "ExecReload"))]
    return r.stdout if any(real in ln or path in ln for ln in lines) else None


def _systemctl_reload():
    exe = shutil.which("systemctl")
    try:
        r = subprocess.run([exe, "reload", UNIT], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CliError(f"`systemctl reload relay` failed: {e}; the file is written: run it yourself")
    if r.returncode != 0:
        why = (r.stderr or r.stdout).strip().splitlines()
        raise CliError("`systemctl reload relay` failed: " + (why[-1] if why else f"exit {r.returncode}") +
                       "; the file is written: run it as root (sudo systemctl reload relay)")


def _status_url(cfg):
    st = cfg.get("status") or {}
    if not st.get("enabled"):
        return None
    host = st.get("host", "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{'[' + host + ']' if ':' in host else host}:{st.get('port', 8081)}"


def _get_mtproto(base):
    with urllib.request.urlopen(base + "/api/status", timeout=10) as r:
        st = json.loads(r.read())
    return st.get("mtproto") or {}, st.get("config")


def _post_reload(base):
    req = urllib.request.Request(base + "/api/reload", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def expected(cfg, now=None):
    """What a relay running cfg reports under /api/status's mtproto: (secrets, untils of the retiring, port)."""
    mt = cfg.get("mtproto") or {}
    current = [s.strip().lower() for s in mt.get("secrets") or []]
    untils = sorted(r["until"] for r in mt.get("retired") or [] if r["secret"].strip().lower() not in current)
    return len(current) + len(untils), untils, mt.get("port", 8443)


def runs(reported, digest, cfg, file_digest):
    """True/False: the relay runs cfg; None: the relay's report cannot tell (no digest, nothing retiring)."""
    if digest is not None:  # a relay that reports the digest of the config it runs (firmware/relay/__main__.py)
        return digest == file_digest
    n, untils, port = expected(cfg)
    got = reported.get("secrets") or []
    same = (len(got) == n and sorted(s["until"] for s in got if s.get("until")) == untils
            and port in (reported.get("ports") or []))
    if not same:
        return False
    return True if untils else None  # N plain secrets before and after: nothing tells old from new


def reload_and_check(path, cfg):
    with open(path, "rb") as f:
        file_digest = hashlib.sha256(f.read()).hexdigest()[:12]  # as the relay computes it
    unit = _systemd_unit_reading(path)
    base = _status_url(cfg)
    how = "systemctl reload relay" if unit else "POST /api/reload"
    if unit:
        _systemctl_reload()
    elif base is None:
        return "reload the running relay: `systemctl reload relay` (or send it SIGHUP); open tunnels stay"
    else:
        try:
            answer = _post_reload(base)
        except (urllib.error.URLError, OSError, ValueError) as e:
            return (f"the relay did not answer at {base}/api/reload ({getattr(e, 'reason', e)}): it takes the new "
                    "secret when it starts; if it runs, `systemctl reload relay` or send it SIGHUP")
        if not answer.get("reloaded"):
            raise CliError("the running relay refused the new config: " + "; ".join(answer.get("problems") or []) +
                           f"; {path} is written: fix it and reload")
    if base is None:
        return ("asked systemd to reload the relay; cannot check that it took the new secret (its status listener "
                "is off): try a new link")
    deadline = time.monotonic() + _WAIT_S
    verdict, err = False, None
    while True:
        try:
            reported, digest = _get_mtproto(base)
            err = None
            verdict = runs(reported, digest, cfg, file_digest)
        except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as e:
            err = getattr(e, "reason", e)
        if verdict is not False or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    if err is not None:
        return (f"asked the relay to reload ({how}), but its status listener at {base} did not answer ({err}): "
                "cannot check that it took the new secret; try a new link")
    if verdict is None:
        return (f"asked the relay to reload ({how}); it reports the same number of secrets as before, which cannot "
                "tell old from new (firmware older than this relayctl does not report its config's digest): try a new link")
    if verdict:
        return "the running relay took the new secret (open tunnels stay)"
    hint = ("it reads another copy of the config (an installed relay runs on /var/lib/relay/config.json, which "
            "`systemctl reload relay` refreshes)" if not unit else "the unit may copy another file")
    raise CliError(f"the relay reloaded ({how}) but still runs its old secrets: {hint}; {path} is written: "
                   "reload the relay so it reads that file, then check `relayctl status`")
