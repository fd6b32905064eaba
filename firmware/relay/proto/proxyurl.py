"""An upstream proxy's URL, sans-I/O: 'socks5://user:pass@host:port', 'socks5h://host:port' (the proxy
resolves names, as curl says) or 'http://host:port' -> its parts. The config check and the upstream code
read it the same way; the host must be an address (no DNS before the uplink works).
"""

from relay.proto.addr import parse_ip, split_host_port


def parse_proxy_url(url):
    """'socks5://user:pass@host:port' or 'http://host:port' -> (kind, ip, port, user, password). ValueError if bad."""
    if "://" not in url:
        raise ValueError("expected socks5://HOST:PORT or http://HOST:PORT, got " + repr(url))
    kind, rest = url.split("://", 1)
    if kind not in ("socks5", "socks5h", "http"):
        raise ValueError("upstream kind must be socks5, socks5h or http, got " + repr(kind))
    user = password = None
    if "@" in rest:
        cred, rest = rest.rsplit("@", 1)
        if ":" not in cred:
            raise ValueError("expected user:password@ in " + repr(url))
        user, password = cred.split(":", 1)
        user, password = user.encode(), password.encode()
    host, port = split_host_port(rest.rstrip("/"))
    ip = parse_ip(host)
    if ip is None:
        raise ValueError("upstream host must be an IP address (no DNS before the uplink works): " + repr(host))
    return kind, ip, port, user, password
