"""SNTP (RFC 4330) client packets, sans-I/O: a request out, the server's time in.

request(cookie) -> 48 bytes to send over UDP to port 123. cookie: 8 random
bytes placed in the transmit timestamp; a genuine reply echoes them as its
originate timestamp, so a stray or forged datagram is refused (the device's
own clock is not trusted here, which is the reason for asking).
parse(reply, cookie) -> Unix seconds (int), or raises NTPError with the reason.
No sockets, no clock: the I/O side (clock.py) sends, waits and retries.
"""

NTP_PORT = 123
PACKET_LEN = 48
_NTP_UNIX = 2208988800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01
_ERA = 1 << 32  # NTP seconds wrap on 2036-02-07; values below _PIVOT are read as era 1
_PIVOT = 3913056000  # NTP seconds of 2024-01-01: no server answers with an earlier date
MODE_CLIENT = 3
MODE_SERVER = 4
MODE_BROADCAST = 5
LI_ALARM = 3  # leap indicator 3: the server's own clock is not synchronised


class NTPError(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def request(cookie):
    """A client request (version 4, mode 3) carrying cookie as its transmit timestamp."""
    if len(cookie) != 8:
        raise ValueError("cookie must be 8 bytes")
    return bytes(((4 << 3) | MODE_CLIENT,)) + bytes(39) + bytes(cookie)


def parse(reply, cookie):
    """The server's transmit time as Unix seconds (rounded), from a reply to request(cookie)."""
    if len(reply) < PACKET_LEN:
        raise NTPError("short packet (%d bytes)" % len(reply))
    li, vn, mode = reply[0] >> 6, (reply[0] >> 3) & 7, reply[0] & 7
    if mode != MODE_SERVER and mode != MODE_BROADCAST:
        raise NTPError("not a server reply (mode %d)" % mode)
    if vn < 1 or vn > 4:
        raise NTPError("unknown version %d" % vn)
    stratum = reply[1]
    if stratum == 0:
        raise NTPError("kiss-o'-death " + repr(bytes(reply[12:16])))
    if stratum > 15 or li == LI_ALARM:
        raise NTPError("server not synchronised")
    if bytes(reply[24:32]) != bytes(cookie):
        raise NTPError("reply to another request")
    secs = int.from_bytes(reply[40:44], "big")
    frac = int.from_bytes(reply[44:48], "big")
    if secs == 0 and frac == 0:
        raise NTPError("no transmit time")
    if secs < _PIVOT:
        secs += _ERA  # era 1 (after 2036)
    return secs - _NTP_UNIX + (1 if frac >= 1 << 31 else 0)

