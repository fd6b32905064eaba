"""Network namespaces for the mesh tests: make them, link them, run programs in them, remove them all.

Every namespace gets a unique name (pid + random tag); links are created from inside a
namespace with the far end moved straight into the other, so nothing is ever added to the
root namespace. Processes started here are stopped by their PID, namespaces deleted, also
when a test fails. Addresses live only inside these namespaces.
"""

import json
import os
import secrets
import select
import subprocess
import time


from relayctl.cmd_run import relay_command
from tests.helpers import netns


def sh(*argv, check=True, timeout=20, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


class Namespaces:
    def __init__(self, tmp, prefix="relaymesh"):
        self.tmp = tmp
        self.tag = f"{prefix}-{os.getpid() % 100000}-{secrets.token_hex(2)}"
        self.ns = {}
        self.procs = {}  # name -> Popen, all stopped by PID in close()

    def add(self, *names):
        for who in names:
            name = f"{self.tag}-{who}"
            sh("ip", "netns", "add", name)
            self.ns[who] = name
            self.ip(who, "link", "set", "lo", "up")

    def ip(self, who, *args, check=True):
        return sh("ip", "-n", self.ns[who], *args, check=check)

    def run(self, who, *argv, check=True, timeout=20, **kw):
        return sh("ip", "netns", "exec", self.ns[who], *argv, check=check, timeout=timeout, **kw)

    def link(self, a, name_a, b, name_b):
        """A veth pair: name_a in a, name_b in b, both up."""
        self.ip(a, "link", "add", name_a, "type", "veth", "peer", "name", name_b, "netns", self.ns[b])
        self.ip(a, "link", "set", name_a, "up")
        self.ip(b, "link", "set", name_b, "up")

    def bridge(self, who, name):
        self.ip(who, "link", "add", name, "type", "bridge", "forward_delay", "0")
        self.ip(who, "link", "set", name, "up")

    def port(self, who, bridge, name, other, other_name):
        """A veth from other into who's bridge (a phone on a relay's Wi-Fi, an AP's port)."""
        self.link(who, name, other, other_name)
        self.ip(who, "link", "set", name, "master", bridge)

    def start(self, key, who, argv, env=None, **kw):
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[who], *argv], env=env, **kw)
        self.procs[key] = p  # `ip netns exec` execs the command: this PID is the program itself
        return p

    def stop(self, key, sig="term"):
        p = self.procs.get(key)
        if p is None or p.poll() is not None:
            return
        (p.kill if sig == "kill" else p.terminate)()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def start_relay(self, key, who, config, runtime="cpython", timeout=30):
        path = self.tmp / f"config-{key}.json"
        path.write_text(json.dumps(config))
        argv, env = relay_command(runtime, str(path), [])
        log = open(self.tmp / f"{key}.err", "w")
        p = self.start(key, who, argv, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        line = ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and "relay ready" not in line:
            if select.select([p.stdout], [], [], 0.5)[0]:
                line = p.stdout.readline()
                if not line:
                    break
            elif p.poll() is not None:
                break
        assert "relay ready" in line, f"{key}: {line!r} {(self.tmp / f'{key}.err').read_text()}"
        return line.strip()

    def close(self):
        netns.stop(list(self.procs.values()))
        for p in self.procs.values():
            for f in (p.stdout, p.stderr):
                if f is not None:
                    f.close()
        netns.delete(self.ns.values())


def curl(net, who, *args, timeout=5):
    """-> (exit code, body bytes). Exit 28 is a timeout, 7 a refused/unreachable connect."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}  # only the proxies a test names
    r = subprocess.run(["ip", "netns", "exec", net.ns[who], "curl", "-sS", "--max-time", str(timeout), *args],
                       capture_output=True, timeout=timeout + 10, env=env)
    return r.returncode, r.stdout


def blocked(net, probes, timeout=2):
    """curl every (who, url) at once -> those that were not stopped (exit code other than 7 refused/unreachable
    or 28 timed out), as [(who, url, code)]. At once: each blocked probe may wait its whole timeout."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(probes)) as pool:
        codes = list(pool.map(lambda p: curl(net, p[0], p[1], timeout=timeout)[0], probes))
    return [(who, url, code) for (who, url), code in zip(probes, codes) if code not in (7, 28)]


def wait_for(cond, timeout, step=0.2):
    """Poll cond() until it is true -> seconds it took, or None at the timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(step)
    return None
