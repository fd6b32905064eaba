"""Requests to the relay's admin page (the portal's or the status listener's), as a browser sends them."""

import base64
import socket

from tests.helpers.origin import read_to_close


def request(port, path, method="GET", pw=None, headers=(), src="127.0.0.1", host=None, dst="127.0.0.1"):
    """One request from src to dst:port, logged in as admin with pw when given -> (status, whole reply)."""
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    s.connect((dst, port))
    h = [("Host", host or f"{dst}:{port}"), ("Connection", "close")] + list(headers)
    if pw is not None:
        h.append(("Authorization", "Basic " + base64.b64encode(b"admin:" + pw.encode()).decode()))
    s.sendall((f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h) + "\r\n").encode())
    data = read_to_close(s)
    s.close()
    return int(data.split(b" ", 2)[1]), data
