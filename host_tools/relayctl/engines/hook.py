"""`relayctl run --site`: start the site's engines and chain the relay through them.

start(site, cfg, workdir) starts a Supervisor for the site's [[uplink.engine]] tables and
puts them, in the site's order, at the head of cfg's upstream list with their names and the
site's probe (the relay's path finder then orders them by what passes). Returns the
supervisor (stop() it when the relay ends) or None when the site lists no engine.
"""

from relayctl import out
from relayctl.engines.supervise import Supervisor


def start(site, cfg, workdir):
    from relayctl.cmd_engine import load_engines

    r, engines = load_engines(site)
    up = cfg.setdefault("upstream", {})
    urls = [e.upstream_url() for e in engines]
    names = [e.name for e in engines]
    if r["uplink.upstream"]:
        urls.append(r["uplink.upstream"])
        names.append("upstream")
    if not urls:
        return None
    up["proxies"] = urls + list(up.get("proxies") or [])
    up["names"] = names + list(up.get("names") or [])
    up.setdefault("probe", r["uplink.probe"])
    sup = Supervisor(engines, workdir).start() if engines else None
    for e in engines:
        host, port = e.socks_endpoint()
        out.info(f"engine {e.name} ({e.kind}) started: SOCKS {host}:{port}")
    return sup
