"""A mesh of relays sharing uplinks (mesh.md): render one relay's mesh files, or look at a running mesh.

    relayctl mesh render BOARD --site site.toml [--relay NAME] --out DIR
    relayctl mesh status --host ADDR[:PORT] [--json] [--timeout S]

render writes, for the relay NAME of the site's [mesh] (else the site's mesh.relay): babeld.conf,
the link's config (wpa_supplicant-mesh.conf for 802.11s or ad-hoc on Linux; mesh.uci on OpenWrt,
and mesh-batman-adv.uci, the untested layer-2 alternative), mesh-up.sh and relay-mesh.service
(addresses, forwarding), mesh.nft and mesh-plan.txt. `relayctl wifi apply --relay NAME` sends and
starts them together with the access point's files.
status asks one relay's status listener (its mesh address, port 8081), then every relay that
relay routes to, and prints the relays, their links, which relay carries each one's uplink, the
hops and the phones on each.
"""

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from relayctl import boards, out
from relayctl.errors import CliError
from relayctl.cmd_wifi import write_files
from relayctl.mesh import files_for


def add_arguments(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    r = sub.add_parser("render", help="write one relay's babeld.conf, link config and firewall")
    r.add_argument("board", help="board profile, e.g. rpi-4 or gl-mt300n-v2")
    r.add_argument("--site", metavar="FILE", required=True, help="the site file with the [mesh] section")
    r.add_argument("--relay", metavar="NAME", help="which relay of [mesh.relays] (default: the site's mesh.relay)")
    r.add_argument("--out", metavar="DIR", required=True, help="directory to write into")
    s = sub.add_parser("status", help="the relays of a running mesh, their links, uplinks, hops and phones")
    s.add_argument("--host", metavar="ADDR[:PORT]", required=True, help="any relay's status listener (port 8081)")
    s.add_argument("--json", action="store_true", help="print what the relays answered as JSON")
    s.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each relay (default 5)")


def run(args):
    return _render(args) if args.action == "render" else _status(args)


def _render(args):
    r = boards.load_or_fail(args.board, args.site, args.relay)
    p = getattr(r, "mesh", None)
    if p is None:
        raise CliError(f"{args.site}: no [mesh.relays] in it: describe the mesh first (see mesh.md)", 2)
    if p.this is None:
        raise CliError(f"which relay is this? pass --relay NAME or set mesh.relay in {args.site} "
                       f"(the mesh has: {', '.join(p.relays)})", 2)
    if r["runtime"] == "micropython" or p.this.satellite:
        raise CliError(f"{p.this.name} is a satellite ({r.name}): it joins {p.this.via or 'a relay'}'s Wi-Fi "
                       f"by config.json alone; build it with `relayctl build {args.board} --site {args.site}`", 2)
    openwrt = r["linux.service"] == "procd"
    files = files_for(r, openwrt)
    outdir = write_files(args.out, files)
    out.info(f"wrote {', '.join(sorted(files))} to {outdir} for relay {p.this.name} "
             f"({p.this.address}, {'OpenWrt' if openwrt else 'Linux'})")
    return 0


# -- status ------------------------------------------------------------------------------


def status_url(host):
    """http://HOST:PORT/api/status for --host ADDR[:PORT] (the status listener's 8081 when no port is given)."""
    if host.count(":") == 0 or (host.count(":") > 1 and not host.startswith("[")):
        host = f"[{host}]:8081" if ":" in host else f"{host}:8081"
    return f"http://{host}/api/status"


def _get(host, timeout):
    with urllib.request.urlopen(status_url(host), timeout=timeout) as r:
        return json.loads(r.read())


def _sane(st):
    """A relay's status as this view reads it, or None when it is not a mesh relay's (an older firmware, an
    error page, another program on the port): that relay is shown as not answering, the others still are."""
    if not isinstance(st, dict) or not isinstance(st.get("mesh"), dict):
        return None
    m = dict(st["mesh"])
    for key in ("relays", "neighbours"):
        items = m.get(key)
        m[key] = [x for x in items if isinstance(x, dict) and isinstance(x.get("address"), str)] \
            if isinstance(items, list) else []
    if not isinstance(m.get("carrier"), dict):
        m["carrier"] = None
    if not isinstance(m.get("phones"), int):
        m["phones"] = 0
    out = dict(st, mesh=m)
    if not isinstance(out.get("uplink"), dict):
        out["uplink"] = None
    return out


def collect(host, timeout):
    """{relay address: its status, or None when it did not answer}, starting at host."""
    try:
        first = _get(host, timeout)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise CliError(f"cannot read {status_url(host)}: {getattr(e, 'reason', e)}; is the relay's status "
                       "listener on its mesh address, and is this computer in the mesh or on that relay?")
    first = _sane(first)
    m = first and first["mesh"]
    if not m:
        raise CliError(f"{host} answers but is not in a mesh (no \"mesh\" in its status); check its config.json's mesh.*")
    port = host.rsplit(":", 1)[1] if host.count(":") == 1 else "8081"
    others = [r["address"] for r in m["relays"]]
    found = {m["address"]: first}

    def one(addr):
        try:
            return addr, _sane(_get(f"{addr}:{port}", timeout))
        except (urllib.error.URLError, OSError, ValueError):
            return addr, None

    with ThreadPoolExecutor(8) as pool:
        for addr, st in pool.map(one, others):
            found[addr] = st
    return first["mesh"]["address"], found


def graph(found):
    """{relay address: [neighbour relay addresses]} from the links each relay reports (babeld's neighbours)."""
    links = {}
    for addr, st in found.items():
        if st is not None:
            links[addr] = [n["address"] for n in st["mesh"].get("neighbours", []) if n.get("address")]
    return links


def hops_from(start, links):
    """Hops from start to each relay over the links (breadth first)."""
    dist = {start: 0}
    todo = [start]
    while todo:
        a = todo.pop(0)
        for b in links.get(a, []):
            if b not in dist:
                dist[b] = dist[a] + 1
                todo.append(b)
    return dist


def render(start, found):
    links_of = graph(found)
    dist = hops_from(start, links_of)
    by_service = {st["mesh"]["service"]: a for a, st in found.items() if st is not None and st["mesh"].get("service")}
    rows = [("relay", "address", "hops", "links (cost)", "uplink", "phones")]
    order = sorted(found, key=lambda a: (dist.get(a, 99), a))
    for addr in order:
        st = found[addr]
        if st is None:
            rows.append(("?", addr, str(dist.get(addr, "?")), "", "NO ANSWER", ""))
            continue
        m = st["mesh"]
        links = ", ".join(f"{_link_name(found, n)} ({n['cost']})" for n in m.get("neighbours", []))
        c = m.get("carrier")
        if m.get("service"):
            up = st.get("uplink")
            uplink = "own" + ("" if up is None else (" UP" if up["up"] else " DOWN"))
        elif c is None:
            uplink = "NONE answers"
        else:
            far = hops_from(addr, links_of).get(by_service.get(c["address"]), "?")
            uplink = f"via {c['name']} ({far} hops)"
        phones = str(m.get("phones", 0)) + (f" (+{m['phones_carried']} carried)" if m.get("phones_carried") else "")
        rows.append((m.get("name") or addr, addr, str(dist.get(addr, "?")), links or "-", uplink, phones))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    answered = [st for st in found.values() if st is not None]
    uplinks = sum(1 for st in answered if st["mesh"].get("service"))
    phones = sum(st["mesh"].get("phones", 0) for st in answered)
    lines.append(f"{len(found)} relays ({len(found) - len(answered)} not answering), {uplinks} with an uplink, "
                 f"{phones} phones; hops counted from {_name(found, start)}")
    return "\n".join(lines)


def _link_name(found, n):
    """A neighbour's relay name; one whose babeld has not yet announced its relay address over the link
    (a link seconds old) by the interface it was heard on."""
    return _name(found, n["address"]) if n.get("address") else f"? on {n.get('if') or '?'}"


def _name(found, addr):
    st = found.get(addr)
    return st["mesh"].get("name") or addr if st else addr


def _status(args):
    start, found = collect(args.host, args.timeout)
    out.info(json.dumps(found, indent=1) if args.json else render(start, found))
    return 0
