"""The links a phone opens to set Telegram's proxy, and their QR codes: one place for build, flash, cards and run.

  proxy_link(server, port, secret) -> "tg://proxy?server=..&port=..&secret=.." (MTProto)
  mtproto_link(cfg) -> the tg://proxy link a relay's portal offers, from its config.json dict, or None
  qr_svg(link) -> SVG bytes; write_qr_svg(link, path or file): the portal page inlines it (viewBox, no size)
"""

from urllib.parse import urlencode


def proxy_link(server, port, secret):
    return "tg://proxy?" + urlencode({"server": server, "port": port, "secret": secret})


def mtproto_link(cfg):
    """The tg://proxy link the portal offers (first secret), or None without a portal or MTProto."""
    mt, portal = cfg.get("mtproto") or {}, cfg.get("portal") or {}
    if not mt.get("enabled") or not mt.get("secrets") or not portal.get("enabled"):
        return None
    server = portal.get("address") or portal.get("host", "127.0.0.1")
    secret = mt["secrets"][0].strip().lower()
    if secret.startswith("ee") and len(secret) == 34 and mt.get("tls_domain"):
        secret += mt["tls_domain"].encode().hex()  # the domain the relay fills in, as the phone needs it
    return proxy_link(server, mt.get("port", 8443), secret)


def write_qr_svg(link, path):
    """An SVG QR code of link, small enough to inline in the portal page."""
    import segno

    segno.make(link, error="m").save(path, kind="svg", border=2, xmldecl=False, nl=False, omitsize=True)  # viewBox: the page sizes it


def qr_svg(link):
    """write_qr_svg's bytes, for files that go into an image or bundle."""
    import io

    buf = io.BytesIO()
    write_qr_svg(link, buf)
    return buf.getvalue()
