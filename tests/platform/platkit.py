"""Helpers shared by the platform tests."""


def config(**sections):
    """A config.json with loopback listeners and the given sections merged in."""
    cfg = {"socks": {"host": "127.0.0.1", "port": 1080}, "http": {"enabled": False}}
    for k, v in sections.items():
        cfg.setdefault(k, {}).update(v)
    return cfg
