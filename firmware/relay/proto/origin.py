"""Whether a state-changing request comes from the relay's own pages, sans-I/O: no cross-site form, no DNS
rebinding. Used by the admin page's restart and the status listener's POST /api/reload.

A browser names the page a POST comes from (Origin, or at least Referer): it must be this relay's, as the
Host header says, and Host must be an address or one of the relay's names (a name of someone else's that
resolves to the relay is DNS rebinding). Clients that send neither Origin nor Referer are not browsers
(relayctl, curl), and no web page can drive them.
"""


def header(head, name):
    """The value of header `name` (lower-case bytes) in a request head (bytes), or None."""
    for line in bytes(head).split(b"\r\n")[1:]:
        colon = line.find(b":")
        if colon > 0 and line[:colon].strip().lower() == name:
            return line[colon + 1 :].strip()
    return None


def host_ok(host, names):
    """host (no port, lower case): an address, "localhost" or one of names."""
    from relay.proto.addr import parse_ip

    if not host or host == "localhost" or host in names:
        return True
    return parse_ip(host[1:-1] if host.startswith("[") else host) is not None


def host_of(host_header):
    """The Host header's value (bytes) -> the host without its port, lower case."""
    host = _text(host_header).lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.split(":")[0].rstrip(".")


def same_origin(host_header, origin, referer):
    """A request whose page (Origin, else Referer) is this Host's own; True for clients that send neither."""
    host = _text(host_header or b"").lower()
    if origin is not None:
        return host != "" and _text(origin).lower() == "http://" + host
    if referer is not None:
        return host != "" and _text(referer).lower().startswith("http://" + host + "/")
    return True


def from_own_page(head, names=()):
    """For a POST that changes state: False when a browser sent it from another site's page (or a rebound
    name); True for the relay's own pages and for clients that are not browsers."""
    origin, referer = header(head, b"origin"), header(head, b"referer")
    if origin is None and referer is None:
        return True
    h = header(head, b"host")
    return h is not None and host_ok(host_of(h), names) and same_origin(h, origin, referer)


def _text(b):
    try:
        return bytes(b).decode()
    except UnicodeError:
        return ""
