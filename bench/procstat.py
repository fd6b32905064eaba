"""CPU and memory of a process tree, read from /proc (Linux only).

CPU is utime+stime+cutime+cstime of the root pid and all its live
descendants (processes; their threads are included in each process's
counters, reaped children in cutime/cstime), in clock ticks of 10 ms.
RSS is the sum of VmRSS over the same tree.
"""

import os
import resource
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    """(ppid, cpu ticks incl. reaped children, state, kernel-mode ticks) of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    # fields[0] is the state (field 3 of proc(5)); utime..cstime are fields 14..17
    return int(fields[1]), sum(int(x) for x in fields[11:15]), fields[0], int(fields[12]) + int(fields[14])


def tree(root):
    """root and its live descendants."""
    kids = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                kids.setdefault(st[0], []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.append(pid)
            todo.extend(kids.get(pid, ()))
    return out


def cpu_s(root, kernel=False):
    """CPU seconds used so far by the tree rooted at root (kernel: only those spent in the kernel)."""
    ticks = 0
    for pid in tree(root):
        st = _stat(pid)
        if st is not None:
            ticks += st[3] if kernel else st[1]
    return ticks / CLK_TCK


def rss_kib(root):
    """Sum of VmRSS (KiB) over the tree rooted at root."""
    total = 0
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def stop(proc, first_wait=0.0):
    """End a child we started (a subprocess.Popen): wait first_wait s for it to leave by itself,
    then SIGTERM, then SIGKILL after 5 s."""
    try:
        proc.wait(first_wait)
        return
    except subprocess.TimeoutExpired:
        pass
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def alive(pid):
    st = _stat(pid)
    return st is not None and st[2] not in (b"Z", b"X")


def self_cpu_s():
    """CPU seconds of this process (all its threads)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def machine_ticks():
    """(total, idle) jiffies of all cores, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v), v[3] + v[4]


class Meter:
    """CPU of the proxy tree, this client and the servers child over an interval,
    and how busy the whole machine was (other tenants are a noise flag)."""

    def __init__(self, proxy_pid, servers_pid):
        self.proxy_pid, self.servers_pid = proxy_pid, servers_pid

    def _read(self):
        return (time.monotonic(), cpu_s(self.proxy_pid) if self.proxy_pid else None,
                self_cpu_s(), cpu_s(self.servers_pid) if self.servers_pid else 0.0, machine_ticks(),
                cpu_s(self.proxy_pid, kernel=True) if self.proxy_pid else None)

    def start(self):
        self.t0 = self._read()
        return self

    def stop(self):
        w0, p0, c0, s0, (m0, i0), k0 = self.t0
        w1, p1, c1, s1, (m1, i1), k1 = self._read()
        wall = max(w1 - w0, 1e-9)
        ncpu = os.cpu_count() or 1
        busy_cores = (1 - (i1 - i0) / max(m1 - m0, 1)) * ncpu
        proxy = None if p0 is None else p1 - p0
        mine = (proxy or 0.0) + (c1 - c0) + (s1 - s0)
        return {
            "wall_s": round(wall, 4),
            "proxy_cpu_s": None if proxy is None else round(proxy, 3),
            # the part of it spent in the kernel (syscalls, loopback TCP): what no Python change can cut
            "proxy_kernel_share": None if not proxy else round((k1 - k0) / proxy, 3),
            "client_cpu_s": round(c1 - c0, 3),
            "servers_cpu_s": round(s1 - s0, 3),
            "proxy_cores": None if proxy is None else round(proxy / wall, 3),
            "machine_busy": round(busy_cores / ncpu, 3),
            # cores used by everything outside this benchmark (other tenants, kernel threads)
            "other_cores": round(max(0.0, busy_cores - mine / wall), 3),
        }
