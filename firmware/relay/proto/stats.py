"""Counters: how much, never who or where.

The relay keeps totals and refusals by reason. No client address and no
destination is stored here or printed at the default log level.
"""

# Refusal reasons (counter keys).
R_GUARD = "guard"
R_AUTH = "auth"
R_FULL = "full"
R_CLIENT_FULL = "client-full"
R_DNS = "dns"
R_REFUSED = "refused"
R_UNREACHABLE = "unreachable"
R_TIMEOUT = "timeout"
R_COMMAND = "command"
R_ADDRESS_TYPE = "address-type"
R_PROTOCOL = "protocol"
R_HANDSHAKE_TIMEOUT = "handshake-timeout"
R_FAILED = "failed"
R_UPLINK_DOWN = "uplink-down"
R_POLICY = "policy"
R_QUOTA = "quota"
R_BUDGET = "budget"


class Stats:
    __slots__ = (
        "sessions",
        "tunnels",
        "tunnels_total",
        "bytes_up",
        "bytes_down",
        "udp_associations",
        "udp_datagrams",
        "udp_dropped",
        "refused",
    )

    def __init__(self):
        self.sessions = 0
        self.tunnels = 0
        self.tunnels_total = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.udp_associations = 0
        self.udp_datagrams = 0
        self.udp_dropped = 0  # datagrams not relayed: malformed, refused, too big, unsendable
        self.refused = {}

    def refuse(self, reason):
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def as_dict(self):
        return {
            "sessions": self.sessions,
            "tunnels_open": self.tunnels,
            "tunnels_total": self.tunnels_total,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "udp_associations": self.udp_associations,
            "udp_datagrams": self.udp_datagrams,
            "udp_dropped": self.udp_dropped,
            "refused": dict(self.refused),
        }


class Refusal(Exception):
    """A destination the relay will not or cannot reach; .reason is a stats key."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason
