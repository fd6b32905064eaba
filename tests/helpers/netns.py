"""Network namespaces the tests make: whether this machine can, and the end of a run in them.

need_netns skips a test (with the reason) where namespaces cannot be made or a tool is missing. stop and
delete are every harness's teardown: the processes a test started stopped by their PID, then the
namespaces it made removed, also when the test failed.
"""

import os
import secrets
import shutil
import subprocess
import sys

import pytest


def need_netns(*tools):
    """Skip (with the reason) where namespaces cannot be made or a tool is missing."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("network namespaces need Linux and root (CAP_SYS_ADMIN, CAP_NET_ADMIN)")
    for tool in ("ip", *tools):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed (make setup installs babeld nftables dnsmasq-base busybox curl)")
    probe = f"relaytest-probe-{os.getpid()}-{secrets.token_hex(2)}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("this machine cannot create network namespaces: " + r.stderr.strip())
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)


def stop(procs, wait_s=5):
    """SIGTERM to each of procs still running, in order; SIGKILL to any not gone wait_s seconds later."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(wait_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def delete(names):
    """Remove the namespaces a test made (one already gone is no error)."""
    for name in names:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
