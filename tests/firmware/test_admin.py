"""The admin page (relay.admin), request heads in, responses out, on a clock the test turns (issue 13 item 9)."""

import base64

import pytest

from relay.proto.admin import Admin, LoginBrake

WIFI_PHONE = bytes([192, 168, 4, 23])
WIRED = bytes([10, 0, 0, 2])


class Clock:
    def __init__(self):
        self.t = 1000

    def now(self):
        return self.t

    def since(self, t):
        return self.t - t


def make(on_wifi=True, password="s3cret pass"):
    c = Clock()
    n = iter(range(1, 10**6))
    a = Admin(password, ["relay.lan", "192.168.4.1"], on_wifi, ["kk", "ru", "en"], c.now, c.since,
              lambda k: next(n).to_bytes(k, "big"))
    return a, c


def info():
    return {"counters": {"tunnels_open": 3, "refused": {"guard": 2}}}


def ask(a, path="/admin", pw=None, client=WIFI_PHONE, wifi=True, method="GET", host="relay.lan", headers=()):
    h = [("Host", host)] + list(headers)
    if pw is not None:
        h.append(("Authorization", "Basic " + base64.b64encode(b"admin:" + pw.encode()).decode()))
    head = "%s %s HTTP/1.1\r\n" % (method, path) + "\r\n".join("%s: %s" % kv for kv in h)
    raw = a.respond(head.encode(), client, wifi, info)
    status = int(raw.split(b" ", 2)[1])
    return status, raw


def token_of(raw):
    return raw.split(b"/admin/restart?token=", 1)[1].split(b'"', 1)[0].decode()


def test_the_page_needs_the_password():
    a, _ = make()
    assert ask(a)[0] == 401 and b"WWW-Authenticate: Basic" in ask(a)[1]
    for pw in ("wrong", "s3cret pas", "s3cret pass!", ""):
        assert ask(a, pw=pw)[0] == 401
    status, raw = ask(a, pw="s3cret pass", headers=[("Accept-Language", "en")])
    assert status == 200 and b"<td>tunnels open</td><td><code>3</code>" in raw and b"forbidden destination: 2" in raw
    assert ask(make(password="")[0], pw="")[0] == 404  # no password: no admin page at all


def test_not_on_the_wifi_unless_the_site_asks():
    a, _ = make(on_wifi=False)
    status, raw = ask(a, pw="s3cret pass", wifi=True, headers=[("Accept-Language", "en")])
    assert status == 404 and b"wired side" in raw
    assert ask(a, pw="s3cret pass", client=WIRED, wifi=False, host="10.0.0.1")[0] == 200


def test_guessing_is_braked_per_source_and_the_right_password_waits_too():
    a, c = make()
    for _ in range(LoginBrake.FREE):
        assert ask(a, pw="guess")[0] == 401
    assert ask(a, pw="guess")[0] == 401  # the 6th is checked, then this source waits 1 s
    status, raw = ask(a, pw="s3cret pass")
    assert status == 429 and b"Retry-After: 1" in raw  # not even the right password is checked meanwhile
    c.t += 1000
    assert ask(a, pw="guess")[0] == 401
    c.t += 1000
    assert ask(a, pw="guess")[0] == 429  # now 2 s
    waits = []
    for _ in range(12):
        c.t += LoginBrake.MAX_WAIT_MS
        ask(a, pw="guess")
        waits.append(a.brake.sources[WIFI_PHONE][1])
    assert max(waits) == LoginBrake.MAX_WAIT_MS
    c.t += LoginBrake.MAX_WAIT_MS
    assert ask(a, pw="s3cret pass")[0] == 200 and WIFI_PHONE not in a.brake.sources  # success clears it


def test_guesses_per_hour_from_one_source_are_few():
    a, c = make()
    checked = 0
    for _ in range(3600 * 10):  # a guess every 100 ms for an hour
        c.t += 100
        if ask(a, pw="guess")[0] == 401:
            checked += 1
    assert checked < 30, checked  # against ~9,000 a second before the brake


def test_a_flood_from_the_wifi_does_not_lock_out_the_wired_side():
    a, c = make()
    for i in range(2000):  # a phone that changes its address with every guess
        ask(a, pw="guess", client=bytes([192, 168, 4, i % 250 + 2]))
    assert a.side_closed
    assert ask(a, pw="s3cret pass", client=bytes([192, 168, 4, 251]))[0] == 429  # the whole Wi-Fi side waits
    assert ask(a, pw="s3cret pass", client=WIRED, wifi=False, host="10.0.0.1")[0] == 200
    assert len(a.brake.sources) <= LoginBrake.MAX_SOURCES
    c.t += LoginBrake.SIDE_REFILL_MS
    assert ask(a, pw="s3cret pass", client=bytes([192, 168, 4, 251]))[0] == 200  # and it recovers


def test_restart_needs_this_logins_token_once():
    a, c = make()
    t1 = token_of(ask(a, pw="s3cret pass")[1])
    t2 = token_of(ask(a, pw="s3cret pass")[1])
    assert t1 != t2  # one per login, not one per boot
    assert ask(a, "/admin/restart?token=" + t1, method="POST")[0] == 401  # the password too
    assert ask(a, "/admin/restart?token=0", pw="s3cret pass", method="POST")[0] == 403
    assert not a.restart_requested
    assert ask(a, "/admin/restart?token=" + t1, pw="s3cret pass", method="POST")[0] == 200 and a.restart_requested
    a.restart_requested = False
    assert ask(a, "/admin/restart?token=" + t1, pw="s3cret pass", method="POST")[0] == 403  # used up
    c.t += 600001
    assert ask(a, "/admin/restart?token=" + t2, pw="s3cret pass", method="POST")[0] == 403  # expired
    assert ask(a, "/admin/restart", pw="s3cret pass")[0] == 405


@pytest.mark.parametrize("headers,host,ok", [
    ([("Origin", "http://relay.lan")], "relay.lan", True),
    ([("Origin", "http://192.168.4.1")], "192.168.4.1", True),
    ([("Referer", "http://relay.lan/admin")], "relay.lan", True),
    ([], "relay.lan", True),  # not a browser: no page drives it
    ([("Origin", "http://evil.example")], "relay.lan", False),  # a form on another site
    ([("Origin", "null")], "relay.lan", False),
    ([("Referer", "http://evil.example/x")], "relay.lan", False),
    ([("Origin", "http://evil.example")], "evil.example", False),  # DNS rebinding: a name that is not ours
    ([], "evil.example", False),
])
def test_restart_only_from_this_relays_own_page(headers, host, ok):
    a, _ = make()
    t = token_of(ask(a, pw="s3cret pass")[1])
    status, _ = ask(a, "/admin/restart?token=" + t, pw="s3cret pass", method="POST", host=host, headers=headers)
    assert (status == 200) == ok and a.restart_requested == ok


def test_rebinding_cannot_read_the_page_either():
    a, _ = make()
    assert ask(a, pw="s3cret pass", host="evil.example")[0] == 403
    assert ask(a, pw="s3cret pass", host="[fe80::1]")[0] == 200


def test_answers_say_their_reason():
    a, _ = make()
    for _ in range(7):
        raw = ask(a, pw="guess")[1]
    assert raw.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert ask(a, pw="s3cret pass", host="evil.example")[1].startswith(b"HTTP/1.1 403 Forbidden\r\n")
