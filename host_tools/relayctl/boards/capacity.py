"""What a board can carry, derived from its profile: tunnels, phones, Wi-Fi clients.

estimate(resolved) -> Capacity. Pure arithmetic on the profile's numbers; the
reasons say which limit binds, so `relayctl boards show` can explain itself.
"""

# One Telegram phone keeps about two tunnels open while idle (its main data
# centre plus one for media); sending photos opens more, up to 8 by
# mtprotoproxy's notes. Two is the honest steady-state figure.
TUNNELS_PER_TELEGRAM_PHONE = 2
# Share of RAM the relay's buffers may take: the rest is the runtime, the
# network stack and fragmentation headroom.
RAM_SHARE = 0.5
# Per-tunnel memory beside the read buffer: two sockets' state and objects.
TUNNEL_OVERHEAD_BYTES = 3072
# On CPython the read buffer is transient; what a tunnel keeps is asyncio's
# transport buffers (up to 64 KiB high-water, usually far less) and objects.
CPYTHON_TUNNEL_BYTES = 32768


class Capacity:
    def __init__(self):
        self.tunnels = 0
        self.phones = 0
        self.wifi_clients = 0
        self.listeners = 0
        self.by_sockets = 0
        self.by_ram = 0
        self.max_tunnels = 0
        self.binding = ""
        self.reasons = []

    def sentence(self):
        phones = "phone" if self.phones == 1 else "phones"
        return f"about {self.tunnels} tunnels, about {self.phones} {phones} running Telegram"

    def as_dict(self):
        return {"tunnels": self.tunnels, "phones": self.phones, "wifi_clients": self.wifi_clients,
                "limited_by": self.binding}


def listeners(r):
    """Sockets the relay itself holds open: SOCKS, HTTP proxy, portal, DNS, MTProto."""
    n = 2
    n += 1 if r["relay.portal_port"] else 0
    n += 1 if r["relay.dns_port"] else 0
    n += 1 if r["relay.mtproto_port"] else 0
    return n


def estimate(r):
    c = Capacity()
    c.listeners = listeners(r)
    sockets = r["capacity.sockets"]
    spare = sockets - (c.listeners if r["capacity.listeners_use_sockets"] else 0)
    c.by_sockets = max(spare, 0) // 2  # a tunnel holds two sockets: the phone's and the destination's
    if r["runtime"] == "micropython":
        per_tunnel = r["capacity.buffer_bytes"] + TUNNEL_OVERHEAD_BYTES
    else:
        per_tunnel = CPYTHON_TUNNEL_BYTES
    c.by_ram = int(r["capacity.ram_kib"] * 1024 * RAM_SHARE) // per_tunnel
    c.max_tunnels = r["capacity.max_tunnels"]
    c.tunnels = min(c.by_sockets, c.by_ram, c.max_tunnels)
    if c.tunnels == c.by_sockets:
        used = f" - {c.listeners} listeners" if r["capacity.listeners_use_sockets"] else " (listeners use a separate pool)"
        c.binding = "sockets"
        c.reasons.append(f"{sockets} sockets{used} = {max(spare, 0)}, two per tunnel")
    elif c.tunnels == c.by_ram:
        c.binding = "ram"
        c.reasons.append(f"{r['capacity.ram_kib']} KiB RAM, half of it for tunnels of {per_tunnel} bytes each")
    else:
        c.binding = "max_tunnels"
        c.reasons.append(f"capacity.max_tunnels = {c.max_tunnels}")
    c.wifi_clients = r["capacity.wifi_clients"]
    c.phones = c.tunnels // TUNNELS_PER_TELEGRAM_PHONE
    c.reasons.append(f"{TUNNELS_PER_TELEGRAM_PHONE} tunnels per phone running Telegram (more while sending media)")
    if c.wifi_clients and c.phones > c.wifi_clients:
        c.phones = c.wifi_clients
        c.binding = "wifi_clients"
        c.reasons.append(f"the radio associates about {c.wifi_clients} phones")
    return c
