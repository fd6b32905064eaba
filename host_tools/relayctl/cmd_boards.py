"""Board profiles: list them, show what one can carry, check files, start a new one, print the schema.

    relayctl boards list
    relayctl boards show NAME [--site site.toml] [--mesh N]
    relayctl boards check [FILES...] [--site site.toml]   (no files: every profile in boards/)
    relayctl boards new NAME --from BASE
    relayctl boards schema

Problems print one per line as `file:line: key: message`; any error exits 2.
"""

from pathlib import Path

from relayctl import boards, out, paths
from relayctl.boards import schema
from relayctl.boards.capacity import estimate, public_estimate
from relayctl.errors import CliError


def add_arguments(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    sub.add_parser("list", help="the profiles in boards/")
    s = sub.add_parser("show", help="a profile's settings and what the board can carry")
    s.add_argument("name")
    s.add_argument("--site", metavar="FILE", help="a site.toml to apply on top (with a [mesh]: phones per uplink)")
    s.add_argument("--mesh", metavar="N", type=int, help="phones per uplink for a mesh of N such relays, one with the uplink")
    c = sub.add_parser("check", help="check profiles (default: all in boards/) and optionally a site file")
    c.add_argument("files", nargs="*", metavar="FILE")
    c.add_argument("--site", metavar="FILE", help="a site.toml to check against each profile")
    n = sub.add_parser("new", help="start a profile that extends another")
    n.add_argument("name")
    n.add_argument("--from", dest="base", required=True, metavar="BASE")
    n.add_argument("--force", action="store_true", help="overwrite an existing file")
    sub.add_parser("schema", help="print every profile and site key as a Markdown table")


def run(args):
    return {"list": _list, "show": _show, "check": _check, "new": _new, "schema": _schema}[args.action](args)


def _list(args):
    rows = []
    for name in boards.board_names():
        r = boards.load(name)
        if r.errors:
            rows.append((name, f"(broken: run `relayctl boards check {name}`)"))
            continue
        rows.append((name, r["runtime"], estimate(r).sentence(), r["description"]))
    # Columns as wide as their longest entry, so the descriptions line up whatever the profiles say.
    widths = [max(len(row[i]) for row in rows if len(row) > i + 1) for i in range(3)] if rows else []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        out.info("  ".join(cells))
    return 0


def _fail_on(r):
    for p in r.warnings:
        out.warn(str(p))
    if r.errors:
        raise CliError("\n".join(str(p) for p in r.errors), 2)


def _show(args):
    r = boards.load(args.name, args.site)
    _fail_on(r)
    est = estimate(r)
    out.info(f"{r.name}: {r['description']}")
    out.info(f"  runtime   {r['runtime']}" + (f" (MicroPython >= {r['micropython.min_version']})"
                                                if r["runtime"] == "micropython" else ""))
    out.info(f"  chip      {r['chip.name']} (mpy-cross -march={r['chip.mpy_arch']})")
    if r["flash.size"]:
        out.info(f"  flash     {r['flash.size'] >> 20} MiB; filesystem 0x{r['flash.fs_offset']:x} + 0x{r['flash.fs_size']:x}"
                 f" ({r['flash.fs_size'] // r['flash.block_size']} blocks of {r['flash.block_size']})")
    out.info(f"  carries   {est.sentence()}")
    for reason in est.reasons:
        out.info(f"            {reason}")
    pub = public_estimate(r)
    if pub is not None:  # a Linux board: what it carries reached over the internet, beside what its radio holds
        out.info(f"  public    {pub.sentence()}, limited by {pub.binding}")
        for reason in pub.reasons:
            out.info(f"            {reason}")
    if r["wifi.interface"]:
        out.info(f"  wifi      {r['wifi.interface']} {'/'.join(r['wifi.bands'])} GHz, {r['wifi.address']} in {r['wifi.subnet']},"
                 f" about {r['capacity.wifi_clients']} clients")
    out.info(f"  uplinks   {', '.join(r['uplink.kinds'])}")
    _show_mesh(r, est, args)
    ports = [] if r["relay.public"] else [f"SOCKS {r['relay.socks_port']}", f"HTTP {r['relay.http_port']}"]
    ports += [f"{name} {r[key]}" for name, key in (("portal", "relay.portal_port"), ("DNS", "relay.dns_port"),
                                                  ("MTProto", "relay.mtproto_port")) if r[key]]
    out.info("  listens   " + ", ".join(ports)
             + ("  (public: SOCKS/HTTP only where the site turns them on, with a password)" if r["relay.public"] else ""))
    chain = " -> ".join(layer.path.stem for layer in r.profile.chain)
    out.info(f"  file      {boards.show_path(r.profile.path)}" + (f" (extends {chain.split(' -> ', 1)[1]})" if " -> " in chain else ""))
    return 0


def _show_mesh(r, est, args):
    from relayctl.mesh.capacity import MeshCapacity, uniform

    role = r["mesh.role"]
    if role == "satellite":
        out.info(f"  mesh      satellite: joins a mesh relay's Wi-Fi as a station and chains its tunnels to it "
                 f"(no babeld on {r['runtime']}); brings about {est.phones} phone{'s' if est.phones != 1 else ''} of its own")
    elif role == "relay":
        out.info("  mesh      relay: runs babeld, routes for the other relays, shares its uplink or uses theirs")
    if args.mesh:
        if args.mesh < 1:
            raise CliError("--mesh: give the number of relays, 1 or more", 2)
        out.info(f"            {uniform(r.name, est, args.mesh).sentence()}")
    p = getattr(r, "mesh", None)
    if p is not None:
        relays = []
        for rp in p.relays.values():
            other = boards.load(rp.board or r.name, args.site, rp.name)
            _fail_on(other)
            relays.append((rp.name, estimate(other), rp.uplink))
        out.info(f"            this site: {MeshCapacity(relays).sentence()}")


def _check(args):
    targets = args.files or [str(p) for p in sorted(paths.BOARDS.glob("*.toml"))]
    errors = 0
    for t in targets:
        r = boards.load(t, args.site)
        for p in r.in_order:
            print(p)
        errors += len(r.errors)
        if not r.errors:
            out.info(f"{boards.show_path(r.profile.path)}: ok: {estimate(r).sentence()}")
    if errors:
        raise CliError(f"{errors} problem(s) in {len(targets)} file(s)", 2)
    return 0


def _new(args):
    base = boards.load(args.base)
    _fail_on(base)
    path = Path(args.name if args.name.endswith(".toml") else paths.BOARDS / f"{args.name}.toml")
    if path.exists() and not args.force:
        raise CliError(f"{boards.show_path(path)} exists: it would be overwritten; pick another name or add --force")
    lines = [f"# {path.stem}: a board like {args.base}. Set only what differs; see boards/README.md.",
             f'description = "{path.stem} (based on {args.base})"', f'extends = "{args.base}"', ""]
    table = None
    for f in schema.FIELDS:
        if f.scope == "site" or "." not in f.key:
            continue
        sect, name = f.key.rsplit(".", 1)
        if sect != table:
            lines += ["", f"# [{sect}]"]
            table = sect
        val = _toml(base[f.key])
        lines.append(f"# {name} = {val}   # {f.meaning}")
    path.write_text("\n".join(lines) + "\n")
    out.info(f"wrote {boards.show_path(path)}; check it with `relayctl boards check {boards.show_path(path)}`")
    return 0


def _toml(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, int):
        return f"0x{v:X}" if v >= 0x1000 and v % 0x1000 == 0 else str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(x)}' for k, x in v.items()) + " }"
    return str(v)


def _schema(args):
    print(schema.markdown(), end="")
    return 0
