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
# On CPython the read buffer is transient; what a tunnel keeps is its sockets, the pump's objects
# and, while a phone reads slower than its destination sends, one read of bytes in flight.
# bench/phones.py measured ~4 KiB per MTProto tunnel (22 KiB per phone of 5.6 connections, RSS
# growth at 1,762 phones); twice that leaves room for bytes in flight. (It was 32 KiB: a public
# relay's 1 GiB then capped its tunnels at 16,384, some 2,900 phones.)
CPYTHON_TUNNEL_BYTES = 8192


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
    """Sockets the relay itself holds open: SOCKS, HTTP proxy, portal, DNS, MTProto, status."""
    n = 2
    n += 1 if r["relay.portal_port"] else 0
    n += 1 if r["relay.dns_port"] else 0
    n += 1 if r["relay.mtproto_port"] else 0
    if r.site is not None:
        from relayctl.boards.admin_side import status_host

        n += 1 if status_host(r) is not None else 0  # the status listener, where the admin page lives
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
    if r["relay.public"]:  # phones reach it directly: the load model's figure, not two tunnels a phone (one number)
        pub = public_estimate(r)
        if pub is not None and pub.phones < c.phones:
            c.phones = pub.phones
            c.binding = "public:" + pub.binding
            c.reasons.append(f"as a public relay the load model carries about {pub.phones} (limited by {pub.binding})")
    return c


# -- as a public relay: the Telegram-like load model of issue 16 ------------------------------------
#
# bench/phones.py drives N phones through one relay process: 4-7 MTProto connections each (ee
# secret), a message with a reply every ~20 s each way, 5 % of the phones downloading media at
# 2 Mbit/s. Its figures for the CPython fast path, on its reference machine (a 2-vCPU Xeon VM at
# 2.6 GHz, CPython 3.11, uvloop; bench/README.md), are the constants below. A board's CPU is
# scaled from that machine's one core by chip.core_speed, an estimate in the profile.
MODEL_CONNS_PER_PHONE = 5.6  # connections a phone keeps through the relay (4-7, plus a download's)
MODEL_CPU_S_PER_KPHONE_MIN = 3.3  # relay CPU seconds per 1,000 phones per minute on the reference core
MODEL_RSS_KIB_PER_PHONE = 22  # relay memory growth per phone
MODEL_RSS_BASE_MIB = 25  # the relay's memory before the first phone
# Share of one core the estimate lets the load take: one relay process uses one core, and
# handshake bursts and round-trip times need the rest.
CPU_BUDGET = 0.5


class PublicCapacity:
    def __init__(self):
        self.phones = 0
        self.by_cpu = None  # None: chip.core_speed not rated
        self.by_ram = 0
        self.by_sockets = 0
        self.binding = ""
        self.reasons = []

    def sentence(self):
        return f"about {self.phones} phones as a public MTProto relay (an estimate from bench/phones.py's load)"

    def as_dict(self):
        return {"phones": self.phones, "by_cpu": self.by_cpu, "by_ram": self.by_ram, "by_sockets": self.by_sockets,
                "limited_by": self.binding}


def phones_per_reference_core():
    """Phones one relay process carries on the reference machine's core within CPU_BUDGET."""
    return CPU_BUDGET * 60 * 1000 / MODEL_CPU_S_PER_KPHONE_MIN


def public_estimate(r):
    """Phones the board carries as a public relay (a Linux board running CPython), or None."""
    if r["runtime"] != "cpython":
        return None
    p = PublicCapacity()
    speed = r["chip.core_speed"]
    spare = max(r["capacity.sockets"] - listeners(r), 0)
    p.by_sockets = int(spare / (2 * MODEL_CONNS_PER_PHONE))
    ram_mib = r["capacity.ram_kib"] * RAM_SHARE / 1024 - MODEL_RSS_BASE_MIB
    p.by_ram = max(int(ram_mib * 1024 / MODEL_RSS_KIB_PER_PHONE), 0)
    limits = [(p.by_sockets, "sockets"), (p.by_ram, "ram")]
    if speed:
        ref = round(phones_per_reference_core())
        p.by_cpu = round(ref * speed / 100)
        limits.append((p.by_cpu, "cpu"))
        p.reasons.append(f"CPU: about {p.by_cpu} (the reference core carries {ref} in {CPU_BUDGET:.0%} of its time; "
                         f"chip.core_speed puts this one at {speed} % of it)")
    else:
        p.reasons.append("CPU: not rated (set chip.core_speed, the core's speed in % of bench/phones.py's "
                         "reference core, to include it)")
    p.reasons.append(f"memory: about {p.by_ram} (half of {r['capacity.ram_kib']} KiB RAM, "
                     f"{MODEL_RSS_KIB_PER_PHONE} KiB per phone after {MODEL_RSS_BASE_MIB} MiB)")
    p.reasons.append(f"sockets: about {p.by_sockets} ({r['capacity.sockets']} sockets, two per connection, "
                     f"{MODEL_CONNS_PER_PHONE} connections per phone; capacity.sockets sets LimitNOFILE)")
    p.phones, p.binding = min(limits)
    return p
