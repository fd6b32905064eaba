"""A mesh of relays sharing uplinks: the site's address plan (plan.py), config.json keys (config.py)
and the files babeld and the links need (render.py). See mesh.md."""


def files_for(r, openwrt):
    """The mesh files of resolved r's relay ({} when the site has no [mesh] or names no relay; a satellite
    has none: it is a MicroPython board and joins by config.json alone)."""
    p = getattr(r, "mesh", None)
    if p is None or p.this is None or p.this.satellite:
        return {}
    from relayctl.mesh import render

    return render.render_openwrt(p, p.this) if openwrt else render.render_linux(p, p.this)
