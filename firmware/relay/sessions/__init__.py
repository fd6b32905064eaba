"""One driver per protocol, named after it (proto/socks.py <-> sessions/socks_session.py): it reacts to its
protocol's events and asks the seam (relay/core) to admit, route, dial and tunnel. No listener lives here.
request_head.py is the loop that reads an HTTP request head, shared by the HTTP proxy, the portal and status.
"""
