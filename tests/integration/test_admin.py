"""The admin page on every I/O path (issue 13 item 9): off the Wi-Fi by default (on the status listener:
loopback, the wired or uplink side), guessing braked per source and per side, a flood from the Wi-Fi
never locking out the wired side, and a restart only by this login's token from the relay's own page.

Here the portal's listener is the Wi-Fi side and the status listener, asked from loopback, the wired side."""

import pytest

from tests.helpers.admin_page import request
from tests.helpers.relayproc import free_port
from tests.integration.test_wifi_services import browser  # noqa: F401  (the Chromium fixture)

PW = "field pw"


def start(start_relay, runtime, **portal):
    r = start_relay(runtime, {"portal": dict({"enabled": True, "host": "127.0.0.1", "port": free_port(),
                                               "admin_password": PW}, **portal)})
    r.portal = r.config["portal"]["port"]
    return r


def test_admin_is_off_the_wifi_by_default_and_on_the_wired_side(runtime, start_relay):
    r = start(start_relay, runtime)
    status, body = request(r.portal, "/admin?lang=en", pw=PW)
    assert status == 404 and b"wired side" in body  # the password never has to cross the air
    status, body = request(r.status, "/admin?lang=en", pw=PW)
    assert status == 200 and b"tunnels since start" in body
    assert request(r.status, "/admin")[0] == 401


def test_restart_by_this_logins_token_from_the_relays_own_page(runtime, start_relay):
    r = start(start_relay, runtime)
    me = f"http://127.0.0.1:{r.status}"
    t1 = request(r.status, "/admin", pw=PW)[1].split(b"/admin/restart?token=", 1)[1].split(b'"', 1)[0].decode()
    t2 = request(r.status, "/admin", pw=PW)[1].split(b"/admin/restart?token=", 1)[1].split(b'"', 1)[0].decode()
    assert t1 != t2  # per login, not per boot
    path = "/admin/restart?token=" + t1
    assert request(r.status, path, "POST", PW, [("Origin", "http://evil.example")])[0] == 403  # a form elsewhere
    assert request(r.status, path, "POST", PW, [("Origin", "http://evil.example")], host="evil.example")[0] == 403
    assert request(r.status, "/admin/restart?token=0", "POST", PW, [("Origin", me)])[0] == 403
    assert r.alive()
    status, _ = request(r.status, path, "POST", PW, [("Origin", me)])
    assert status == 200
    assert r.proc.wait(10) == 75  # stops; its service manager starts it again


def test_guessing_is_braked_and_a_wifi_flood_leaves_the_wired_side_open(runtime, start_relay):
    r = start(start_relay, runtime, admin_on_wifi=True)
    answers = [request(r.portal, "/admin", pw="guess %d" % i, src="127.0.0.9")[0] for i in range(40)]
    assert answers.count(401) <= 6 and answers[-1] == 429, answers  # ~9,000 guesses a second before
    assert request(r.portal, "/admin", pw=PW, src="127.0.0.9")[0] == 429  # the right one waits too
    # Many addresses on the Wi-Fi side together: that side pauses, the wired side does not.
    for i in range(30):
        request(r.portal, "/admin", pw="guess", src="127.0.1.%d" % (i + 2))
    assert request(r.portal, "/admin", pw=PW, src="127.0.2.1")[0] == 429
    assert request(r.status, "/admin", pw=PW)[0] == 200
    out, err = r.stop()
    assert "many wrong passwords from the Wi-Fi" in err and "127.0." not in err  # said, naming no one
    assert "crosses the air in the clear" in err  # and at the start, what admin_on_wifi costs


@pytest.mark.parametrize("rt", ["cpython", "micropython"])
def test_restart_button_in_a_real_browser(rt, start_relay, browser):  # noqa: F811  (the fixture imported above)
    """Chromium logs in (HTTP Basic), the page's button posts with the browser's own Origin: it restarts."""
    r = start(start_relay, rt)
    ctx = browser.new_context(http_credentials={"username": "admin", "password": PW})
    page = ctx.new_page()
    resp = page.goto(f"http://127.0.0.1:{r.status}/admin?lang=en", wait_until="load")
    assert resp.status == 200 and page.locator("#counters").count() == 1
    with page.expect_response(lambda x: "/admin/restart" in x.url) as done:
        page.click("#restart")
    assert done.value.status == 200, done.value.text()
    ctx.close()
    assert r.proc.wait(10) == 75
