"""The runtimes: the one place that knows which Python runs the relay.

api.py is the facade everything else imports (`from relay.runtime import api as runtime`): it picks
cpython.py (asyncio on raw non-blocking sockets; on Linux the fast path's own epoll set, epoll.py, and
callback pump, fastpump.py) or micropython.py (MicroPython's asyncio, one shared receive buffer; mpctr.py
where cryptolib has no CTR mode) and says what the one picked can do (api.caps). This file imports
nothing, so a backend importing its siblings makes no cycle.
"""
