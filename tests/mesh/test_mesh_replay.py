"""A mesh login captured on the phones' open Wi-Fi is good once: replayed at the uplink relay it is refused.

A satellite's SOCKS5 login to its uplink relay (the phone's token and its proof, RFC 1929) crosses the
Wi-Fi in clear text. Here a recorder sits between a far relay and its uplink relay (as a listener on that
Wi-Fi would), keeps what the far relay sent, and then replays the login on its own connection.
"""

import socket
import threading

from tests.helpers.relayproc import free_port
from tests.mesh.test_mesh_loopback import KEY, echoes, open_tunnel, uplink_relay


class Recorder:
    """Listens on ip:port and forwards each connection to to_ip:port, keeping the bytes clients sent."""

    def __init__(self, ip, to_ip, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(16)
        self.to = (to_ip, port)
        self.sent = []  # per connection: a bytearray of what the client sent
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(self.to, timeout=5)
            kept = bytearray()
            self.sent.append(kept)
            threading.Thread(target=self._pipe, args=(c, u, kept), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, None), daemon=True).start()

    @staticmethod
    def _pipe(a, b, kept):
        try:
            while True:
                d = a.recv(4096)
                if not d:
                    break
                if kept is not None:
                    kept += d
                b.sendall(d)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def captured_login(sent):
    """The RFC 1929 login packet out of what a relay sent after its SOCKS5 greeting."""
    sent = bytes(sent)
    start = 2 + sent[1]  # VER, NMETHODS, METHODS
    ulen = sent[start + 1]
    plen = sent[start + 2 + ulen]
    return sent[start:start + 3 + ulen + plen]


def test_a_captured_mesh_login_is_refused_when_replayed(runtime, start_relay, echo):
    port = free_port()
    up = uplink_relay(start_relay, runtime, port, {"mesh": {"enabled": True, "key": KEY, "service": "127.0.0.2",
                                                            "port": port}})
    rec = Recorder("127.0.0.3", "127.0.0.2", port)
    far = start_relay("cpython", {"mesh": {"enabled": True, "key": KEY, "uplinks": ["127.0.0.3"], "port": port,
                                           "check_interval": 30, "hop_timeout": 2}})
    try:
        c, code = open_tunnel(far, echo.port, "127.0.0.5")
        assert code == 0 and echoes(c)
        c.close()
        logins = [captured_login(s) for s in rec.sent if len(s) > 2 + s[1] and s[2 + s[1]] == 1]
        assert logins, "the recorder saw no login: %r" % rec.sent
        tunnels = up.status_json()["tunnels_total"]
        for login in logins:  # the phone's tunnel's login (and the health check's, if one was caught)
            r = socket.create_connection(("127.0.0.2", port), timeout=5)
            try:
                r.sendall(b"\x05\x01\x02")
                assert r.recv(2) == b"\x05\x02"
                r.sendall(login)
                assert r.recv(2) == b"\x01\x01", "a replayed login was accepted"
            finally:
                r.close()
        st = up.status_json()
        assert st["tunnels_total"] == tunnels and st["mesh"]["replays"] >= 1
        c, code = open_tunnel(far, echo.port, "127.0.0.5")  # the real relay's next login still works
        assert code == 0 and echoes(c)
        c.close()
    finally:
        rec.close()
