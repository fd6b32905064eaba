"""Keep the uplink engines running as child processes of `relayctl run` (a board uses systemd or procd).

Supervisor(engines, workdir).start() checks every program is installed (one line naming the
Debian/OpenWrt package when not), writes each engine's config (mode 0600) and starts it. A
thread watches them: an engine that exits is restarted after a pause that doubles from 1 s
to 60 s (reset once it has run a minute), and counted; its last output is translated into
one line (translate()). stop() ends each child by its process id. Nothing here reads or
logs traffic; engines are started at log levels that name no destination.
"""

import os
import re
import subprocess
import threading
import time
from collections import deque

from relayctl import out
from relayctl.children import die_with_parent
from relayctl.engines import client, missing
from relayctl.errors import CliError

BACKOFF_FIRST, BACKOFF_MAX, STABLE_S = 1.0, 60.0, 60.0

# (kind or None for any, pattern in the engine's output, one line saying what it means and what to do)
HINTS = (
    (None, r"Address already in use|Could not bind", "its local port {port} is taken (another copy running?); "
                                                      "stop that one or set local_port"),
    ("iodine", r"Bad password|BADAUTH", "the far end refused the password: it must equal the password of iodined "
                                        "there (relayctl engine server-config iodine)"),
    ("iodine", r"Run as root", "iodine must run as root: it makes a tun device"),
    ("iodine", r"open_tun|/dev/net/tun|Failed to open tunnel", "no tun device: modprobe tun (OpenWrt: opkg install kmod-tun)"),
    ("iodine", r"BADIP", "the far end refused this address: another client took the tunnel's place, or too many users"),
    ("iodine", r"No suitable DNS query type|Got no response|giving up",
     "no answer from iodined over DNS: UDP 53 blocked, a wrong domain, or the far end is down"),
    ("iodine", r"BADVERSION|Version .*rejected", "the far end's iodined speaks another protocol version: install the same iodine there"),
    ("trojan", r"certificate verify failed|certificate", "the far end's TLS certificate is not trusted: set ca to its "
                                                         "certificate (self-signed), or check sni"),
    ("trojan", r"use_certificate_chain_file|use_private_key_file", "trojan cannot read its certificate or key "
                                                                  "file: check cert and key (paths, permissions)"),
    ("tor", r"Failed to parse/validate config|Unknown option|Bridge line did not parse|Failed to parse",
     "tor refused its torrc: check the bridge lines (copy them whole, e.g. from obfs4_bridgeline.txt)"),
    ("snowflake", r"Failed to parse/validate config|Unknown option|Bridge line did not parse",
     "tor refused its torrc: check the snowflake bridge lines"),
    ("shadowsocks", r"[Ii]nvalid (cipher|method)|unsupported method", "ss-local does not know the cipher: use one of "
                                                                      "chacha20-ietf-poly1305, aes-256-gcm"),
)
_BOOT = re.compile(r"Bootstrapped (\d+)%(?: \(([\w-]+)\))?")


def translate(engine, lines):
    """The engine's own output -> one line a volunteer can act on (the last line itself when unknown)."""
    text = "\n".join(lines)
    for kind, pattern, say in HINTS:
        if kind in (None, engine.kind) and re.search(pattern, text):
            return say.format(port=engine.local_port)
    for line in reversed(lines):
        if line.strip():
            return line.strip()[-200:]
    return "it printed nothing"


class Child:
    def __init__(self, engine, launch):
        self.engine = engine
        self.launch = launch
        self.proc = None
        self.restarts = 0
        self.started = 0.0
        self.next_start = 0.0
        self.delay = BACKOFF_FIRST
        self.lines = deque(maxlen=40)
        self.bootstrap = None  # tor: (percent, phase)
        self.note = ""

    def state(self):
        running = self.proc is not None and self.proc.poll() is None
        d = {"name": self.engine.name, "kind": self.engine.kind, "running": running, "restarts": self.restarts,
             "pid": self.proc.pid if running else None, "note": self.note}
        if self.bootstrap is not None:
            d["bootstrap"] = self.bootstrap[0]
        return d


class Supervisor:
    def __init__(self, engines, workdir, say=out.info):
        self.workdir = str(workdir)
        self.confdir = os.path.join(self.workdir, "conf")
        self.statedir = os.path.join(self.workdir, "state")
        self.say = say
        self.children = [Child(e, client.launch(e, self.confdir, self.statedir)) for e in engines]
        self.stopping = threading.Event()
        self.thread = None

    def check(self):
        problems = [m for m in (missing(c.engine) for c in self.children) if m]
        if problems:
            raise CliError("\n".join(problems))

    def start(self):
        self.check()
        os.makedirs(self.confdir, mode=0o700, exist_ok=True)
        os.makedirs(self.statedir, mode=0o700, exist_ok=True)
        for c in self.children:
            for name, text in c.launch.files.items():
                path = os.path.join(self.confdir, name)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(text)
            self._spawn(c)
        self.thread = threading.Thread(target=self._watch, name="engines", daemon=True)
        self.thread.start()
        return self

    def _spawn(self, c):
        env = dict(os.environ, **c.launch.env)
        try:
            c.proc = subprocess.Popen(c.launch.argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1,
                                      start_new_session=True,  # Ctrl-C reaches relayctl, which stops them in order
                                      preexec_fn=die_with_parent())
        except OSError as e:
            raise CliError(f"{c.engine.name}: cannot start {c.launch.argv[0]}: {e.strerror}")
        c.started = time.monotonic()
        threading.Thread(target=self._read, args=(c, c.proc), daemon=True).start()

    def _read(self, c, proc):
        for line in proc.stdout:
            line = line.rstrip("\n")
            c.lines.append(line)
            m = _BOOT.search(line)
            if m:
                c.bootstrap = (int(m.group(1)), m.group(2) or "")
                c.note = f"bootstrapped {m.group(1)}%" + (f" ({m.group(2)})" if m.group(2) else "")

    def _watch(self):
        while not self.stopping.wait(0.2):
            now = time.monotonic()
            for c in self.children:
                if c.proc is None:
                    if now >= c.next_start:
                        try:
                            self._spawn(c)
                        except CliError as e:  # e.g. the program was removed meanwhile: keep backing off
                            c.note, c.next_start = str(e), now + c.delay
                            c.delay = min(c.delay * 2, BACKOFF_MAX)
                    continue
                rc = c.proc.poll()
                if rc is None:
                    continue
                c.proc.wait()
                time.sleep(0.05)  # let the reader thread take the last lines
                if now - c.started > STABLE_S:
                    c.delay = BACKOFF_FIRST  # it ran a while: a fresh failure starts the backoff over
                c.restarts += 1
                c.note = translate(c.engine, list(c.lines))
                self.say(f"engine {c.engine.name} stopped (exit {rc}): {c.note}; restart {c.restarts} in "
                         f"{c.delay:.0f} s")
                c.proc, c.next_start = None, now + c.delay
                c.delay = min(c.delay * 2, BACKOFF_MAX)

    def state(self):
        return [c.state() for c in self.children]

    def stop(self):
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(5)
        for c in self.children:
            p = c.proc
            if p is None or p.poll() is not None:
                continue
            p.terminate()  # by its own pid: nothing else is touched
        for c in self.children:
            p = c.proc
            if p is None:
                continue
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
