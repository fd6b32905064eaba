"""Board profiles (boards/*.toml) as far as `relayctl run` needs them.

The full schema, validation and inheritance live with the boards work; this
module maps a profile's capacity and listen settings onto config.json keys.
"""

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from relayctl import paths
from relayctl.errors import CliError


def load_profile(name):
    path = paths.BOARDS / f"{name}.toml"
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise CliError(f"no board profile {path}: see `ls {paths.BOARDS}`", 2)
    except tomllib.TOMLDecodeError as e:
        raise CliError(f"{path}: {e}", 2)


def run_config(name):
    """config.json content for running board `name` on this computer."""
    prof = load_profile(name)
    cap = prof.get("capacity", {})
    relay = prof.get("relay", {})
    host = relay.get("listen", "127.0.0.1")
    cfg = {
        "socks": {"host": host, "port": relay.get("socks_port", 1080)},
        "http": {"host": host, "port": relay.get("http_port", 8080)},
        "limits": {},
    }
    for key, src in (("tunnels", "max_tunnels"), ("tunnels_per_client", "tunnels_per_client"),
                     ("buffer", "buffer_bytes"), ("sessions", "sessions")):
        if src in cap:
            cfg["limits"][key] = cap[src]
    return cfg
