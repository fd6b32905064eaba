"""The path finder on the host: what passes right now, as a table a volunteer can read.

find(engines, probe, upstream="", timeout=5) -> rows, each {path, works, ms, note, rank}:
  - every engine end to end: a SOCKS5 CONNECT through its port to `probe` (a web server abroad)
    and an HTTP GET whose answer firmware/relay/proto/pathcheck.py judges, the same check the relay
    itself runs (relay/services/pathfind.py);
  - a plain upstream proxy (uplink.upstream), the same way;
  - direct TCP to the probe's address on 443, each engine's far port (TCP, or UDP 53 for
    iodine, where a DNS query must be answered).
Rows that carry traffic come first, ordered by what works and how fast (the order the
relay's upstream list takes). When an engine fails end to end but its far port answers,
the note says what that usually means for that engine (a password that does not match).
Blocking sockets, bounded by `timeout` each; nothing is retried.
"""

import random
import socket
import time

from relayctl.boards.render import core_config

core_config()  # puts firmware/ on sys.path: the relay's own SOCKS client, DNS builder and probe judge
from relay.proto import dns, pathcheck, socks  # noqa: E402
from relay.proto.addr import parse_ip  # noqa: E402

# When the engine fails end to end but the far end's port answers: what that usually means.
WRONG_SECRET = {
    "shadowsocks": "the server's port answers but nothing comes back through it: the password or method does not "
                   "match the far end's ss-server",
    "trojan": "the far end passed us to its fallback web site: the password does not match the far end's trojan",
    "iodine": "UDP 53 passes but the tunnel does not carry: see the engine's own error above (password, domain)",
}


def _ms(t0):
    return round((time.monotonic() - t0) * 1000)


def tcp(host, port, timeout):
    t0 = time.monotonic()
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True, _ms(t0), "connects"
    except socket.timeout:
        return False, None, "no answer (dropped on the way?)"
    except ConnectionRefusedError:
        return False, None, "refused (closed there, or reset on the way)"
    except OSError as e:
        return False, None, e.strerror or str(e)


def udp53(server, name, timeout):
    """A DNS query for name to server:53; any answer with our id means UDP 53 passes."""
    t0 = time.monotonic()
    qid = random.randrange(1, 65536)
    s = socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(dns.build_query(qid, name, 2), (server, 53))  # NS: an iodined answers its own domain's
        while True:
            data = s.recv(4096)
            if len(data) >= 2 and data[0] << 8 | data[1] == qid:
                return True, _ms(t0), f"answered by {server}"
    except socket.timeout:
        return False, None, "no answer (UDP 53 blocked?)"
    except OSError as e:
        return False, None, e.strerror or str(e)
    finally:
        s.close()


def through(proxy_host, proxy_port, target, timeout):
    """End to end through a SOCKS5 proxy: CONNECT to target, GET, judge the first bytes."""
    host, _, port = target.rpartition(":")
    t0 = time.monotonic()
    try:
        s = socket.create_connection((proxy_host, proxy_port), timeout=timeout)
    except OSError as e:
        return False, None, "its SOCKS port does not answer: " + (e.strerror or str(e))
    try:
        deadline = t0 + timeout
        cl = socks.Socks5Client(parse_ip(host) or host, int(port))
        s.sendall(cl.greeting())
        while not cl.done:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            data = s.recv(4096)
            if not data:
                return False, None, "the engine closed during the SOCKS handshake"
            for ev in cl.feed(data):
                s.sendall(ev.data)
        s.sendall(pathcheck.request(host))
        answer = cl.rest
        while len(answer) < pathcheck.ENOUGH:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            data = s.recv(4096)
            if not data:
                break
            answer += data
        works, note = pathcheck.judge(answer)
        return works, _ms(t0) if works else None, note
    except socket.timeout:
        return False, None, "no answer in time"
    except socks.SocksError as e:
        return False, None, "refused: " + str(e)
    except OSError as e:
        return False, None, e.strerror or str(e)
    finally:
        s.close()


def find(engines, probe, upstream="", timeout=5.0, notes=None):
    """notes: engine name -> (what its supervisor knows: a bootstrap state or its translated error,
    whether the engine exited). An engine that exited is failing for that reason: its note wins.
    Every probe runs at once (a thread each), so the table takes one timeout, not one per row."""
    from concurrent.futures import ThreadPoolExecutor

    notes = notes or {}
    phost = probe.rpartition(":")[0]
    jobs = [(through, *e.socks_endpoint(), probe, timeout) for e in engines]
    if upstream:
        from relay.proto.proxyurl import parse_proxy_url

        kind, ip, port, _, _ = parse_proxy_url(upstream)
        jobs.append((through, socket.inet_ntop(socket.AF_INET6 if len(ip) == 16 else socket.AF_INET, ip), port,
                     probe, timeout) if kind == "socks5" else (lambda: (False, None, "http upstreams: not probed"),))
    jobs.append((tcp, phost, 443, timeout))
    far = []
    for e in engines:
        for host, port, proto in e.far_ports():
            far.append((e, port, proto))
            if proto == "udp":
                jobs.append((udp53, host, e.domain, timeout) if host else
                            (lambda: (False, None, "no nameserver set: uses the system's"),))
            else:
                jobs.append((tcp, host, port, timeout))
    with ThreadPoolExecutor(max_workers=min(32, len(jobs))) as pool:
        results = list(pool.map(lambda job: job[0](*job[1:]), jobs))
    results.reverse()  # popped in the order the jobs were made
    rows = []
    for e in engines:
        works, ms, note = results.pop()
        engine_note, exited = notes.get(e.name, ("", False))
        if not works and exited:
            note = engine_note
        rows.append({"path": e.name, "kind": e.kind, "works": works, "ms": ms, "note": note, "carries": True,
                     "engine": engine_note})
    if upstream:
        works, ms, note = results.pop()
        rows.append({"path": "upstream", "kind": "upstream", "works": works, "ms": ms, "note": note, "carries": True})
    works, ms, note = results.pop()
    rows.append({"path": "direct tcp/443", "kind": "direct", "works": works, "ms": ms, "note": note, "carries": False})
    for e, port, proto in far:
        r = results.pop()
        rows.append({"path": f"{e.name} {proto}/{port}", "kind": e.kind, "works": r[0], "ms": r[1],
                     "note": r[2], "carries": False})
    far = {r["path"].split(" ")[0]: r["works"] for r in rows if not r["carries"] and r["kind"] != "direct"}
    for r in rows:
        if (r["carries"] and not r["works"] and far.get(r["path"]) and r["kind"] in WRONG_SECRET
                and not notes.get(r["path"], ("", False))[1]):
            r["note"] = WRONG_SECRET[r["kind"]]
    carry = [r for r in rows if r["carries"]]
    # as the relay orders them (relay/services/pathfind.py): working first, by time in 50 ms steps, then the site's order
    carry.sort(key=lambda r: (not r["works"], (r["ms"] or 0) // pathcheck.BUCKET_MS))
    for i, r in enumerate(carry):
        r["rank"] = i + 1 if r["works"] else None
    return carry + [r for r in rows if not r["carries"]]


def table(rows):
    """`path  works  time  note`, one row each."""
    w = max([len("path")] + [len(r["path"]) for r in rows])
    lines = [f"{'path'.ljust(w)}  works  time     note"]
    for r in rows:
        t = f"{r['ms']} ms" if r["ms"] is not None else "-"
        lines.append(f"{r['path'].ljust(w)}  {'yes' if r['works'] else 'no':5}  {t:7}  {r['note']}")
    order = [r["path"] for r in rows if r.get("rank")]
    lines.append("order: " + (", ".join(order) if order else "nothing passes now"))
    return "\n".join(lines)
