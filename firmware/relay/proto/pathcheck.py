"""What one end-to-end path probe sends and how its answer is judged: bytes in, a verdict out.

A path (an upstream proxy, an uplink engine's SOCKS port) is only known to work when
a request crossed it and an answer came back: an engine such as ss-local answers the
SOCKS CONNECT itself, before its far end was reached. So the probe asks a known web
server abroad (upstream.probe) for its first bytes with a plain HTTP GET.

request(host) -> the bytes to send; judge(first_bytes) -> (works, note). No I/O here:
services/pathfind.py (the relay) and relayctl's `uplink paths` both drive it.
"""

BUCKET_MS = 50  # answers this close are equally fast (one probe's time is mostly noise below it): the
# configured order decides between them, so a volunteer's preference (say Shadowsocks before iodine) holds
ENOUGH = 12  # b"HTTP/1.1 301": the status line's code is all the verdict needs


# A browser's headers: a probe every few seconds through each upstream must not name the relay to whoever
# reads the path (the engine's far end, the web server's logs, a censor past the exit).
_HEADERS = (b"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            b"Chrome/124.0.0.0 Safari/537.36\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,"
            b"*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.9\r\nConnection: close\r\n\r\n")


def request(host):
    """A GET any web server answers at once, as a browser sends it; Connection: close so it never lingers."""
    return b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" + _HEADERS


def judge(answer):
    """answer: the first bytes back (b"" when the path closed without any). -> (works, note)."""
    if not answer:
        return False, "closed without an answer"
    if answer[:5] != b"HTTP/":
        # Trojan's fallback site, a captive portal or a censor's block page answer something else.
        return False, "answered, but not as the probe's web server (a fallback site or a block page?)"
    code = answer[9:12]
    if code == b"400":
        # Our GET is well-formed: a 400 means our bytes reached a web server behind something that
        # put its own header in front, e.g. a Trojan server passing a wrong password to its fallback.
        return False, "a web server answered 400 to a well-formed request: a wrong password sent us to a fallback site?"
    return True, "HTTP " + code.decode()
