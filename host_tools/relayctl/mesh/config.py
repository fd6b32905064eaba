"""config.json keys for one relay of a mesh (boards/render.py appends them): pure, from the plan.

A relay gets its mesh address, the uplink relays' range, its service address when it
has an uplink, the key, names for status pages, and its status listener on its mesh
address (`relayctl mesh status` walks the mesh through them; phones never reach it).
A satellite gets the mesh key, "gateway" as its uplink relay, and the mesh's Wi-Fi to
join as a station.
"""

STATUS_PORT = 8081


def pairs(r):
    p = getattr(r, "mesh", None)
    rp = p.this if p is not None else None
    if rp is None:
        return []
    out = [("mesh.enabled", True), ("mesh.key", p.key), ("mesh.port", p.port), ("mesh.names", p.names())]
    if rp.satellite:
        return out + [("mesh.uplinks", ["gateway"]), ("uplink.kind", "wifi-sta"), ("uplink.ssid", r["wifi.ssid"]),
                      ("uplink.passphrase", r["wifi.passphrase"])]
    out += [("mesh.address", rp.address), ("mesh.network", str(p.network)), ("mesh.uplinks", [str(p.uplinks)]),
            ("mesh.babeld", f"[::1]:{p.babeld_port}"),
            ("status.enabled", True), ("status.host", rp.address), ("status.port", STATUS_PORT)]
    if rp.service:
        out.append(("mesh.service", rp.service))
    if p.satellites_of(rp.name):
        out.append(("mesh.listen", [rp.client_address]))  # satellites hand their phones' tunnels over here
    return out


def satellite_port(r):
    """The mesh port a Linux relay opens to its satellites on the phones' side, or 0."""
    p = getattr(r, "mesh", None)
    rp = p.this if p is not None else None
    return p.port if rp is not None and not rp.satellite and p.satellites_of(rp.name) else 0
