"""Print one card per flashed board from inventory.csv.

Each card has the network name and Wi-Fi password, a QR code that joins the
Wi-Fi (WIFI:T:WPA;S:...;P:...;;), a QR code and the text of the Telegram
proxy link (tg://socks?server=...&port=...&user=...&pass=...), when the board
offers MTProto a third QR code and text of its tg://proxy?server=...&port=...&secret=...
link (the board's own secret), and short instructions in Kazakh, Russian and English. Output per board: card-<MAC>.html
(QR codes as embedded PNG, prints from any browser), card-<MAC>.png (with
Pillow and a font that has Cyrillic), and index.html to print them all.
QR codes come from segno; nothing is fetched from the network.
"""

import base64
import csv
import html
import io
from pathlib import Path
from urllib.parse import urlencode

from relayctl import out
from relayctl.links import proxy_link
from relayctl.errors import CliError
from relayctl.files import write_private

STEPS = (
    ("kk", "Қазақша", ("Wi-Fi желісіне қосылыңыз: бірінші кодты сканерлеңіз немесе атауы мен құпиясөзді теріңіз.",
                        "Екінші кодты сканерлеңіз немесе сілтемені ашыңыз: Telegram проксиді өзі қосады.",
                        "Telegram-ды ашыңыз. Байланыс баяу әрі ортақ: алдымен мәтін, бейне кейін.")),
    ("ru", "Русский", ("Подключитесь к сети Wi-Fi: отсканируйте первый код или введите имя и пароль.",
                        "Отсканируйте второй код или откройте ссылку: Telegram сам включит прокси.",
                        "Откройте Telegram. Канал медленный и общий: сначала текст, видео потом.")),
    ("en", "English", ("Join the Wi-Fi: scan the first code, or type the network name and password.",
                        "Scan the second code, or open the link: Telegram turns the proxy on by itself.",
                        "Open Telegram. The link is slow and shared: text first, videos later.")),
)
# The extra step when a card carries the MTProto link (third code).
STEP_MT = {
    "kk": "Қосылмаса, үшінші кодты сканерлеңіз: Telegram-ның өз MTProto-проксиі (қоңырау онымен жүрмейді).",
    "ru": "Если не подключается, отсканируйте третий код: MTProto-прокси самого Telegram (без звонков).",
    "en": "If it does not connect, scan the third code: Telegram's own MTProto proxy (no calls through it).",
}
FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf",
         "/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
         "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf", "/Library/Fonts/Arial Unicode.ttf",
         "C:/Windows/Fonts/arial.ttf")


def add_arguments(p):
    p.add_argument("inventory", help="inventory.csv written by `relayctl flash`")
    p.add_argument("--out", metavar="DIR", default="cards", help="output directory (default cards/)")
    p.add_argument("--no-png", action="store_true", help="HTML only")


def wifi_payload(ssid, password):
    import segno.helpers

    if password:
        return segno.helpers.make_wifi_data(ssid=ssid, password=password, security="WPA")
    return segno.helpers.make_wifi_data(ssid=ssid, password=None, security="nopass")


def telegram_link(row):
    q = [("server", row.get("proxy_host") or "192.168.4.1"), ("port", row.get("proxy_port") or "1080")]
    if row.get("proxy_password"):
        q += [("user", row.get("proxy_user") or "relay"), ("pass", row["proxy_password"])]
    return "tg://socks?" + urlencode(q)


def mtproto_link(row):
    """The tg://proxy link of the board's MTProto secret, or None when it offers none."""
    if not row.get("mtproto_secret"):
        return None
    return proxy_link(row.get("proxy_host") or "192.168.4.1", row.get("mtproto_port") or "8443", row["mtproto_secret"])


def qr_png(payload, scale=6):
    import segno

    buf = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()


def _steps(mt):
    return [(lang, name, lines + ((STEP_MT[lang],) if mt else ())) for lang, name, lines in STEPS]


def card_html(row, wifi, tg, mt=None):
    e = html.escape
    img = lambda data: "data:image/png;base64," + base64.b64encode(data).decode()  # noqa: E731
    steps = "".join(
        f'<section lang="{lang}"><h3>{e(name)}</h3><ol>' + "".join(f"<li>{e(s)}</li>" for s in lines) + "</ol></section>"
        for lang, name, lines in _steps(mt))
    third = (f'\n<figure><img class="qr-mtproto" alt="MTProto" src="{img(qr_png(mt))}">'
             "<figcaption>3. Telegram MTProto</figcaption></figure>") if mt else ""
    mt_text = f'\n<p><code class="mtproto-link">{e(mt)}</code></p>' if mt else ""
    pw = e(row.get("wifi_password") or "(open network / ашық желі / открытая сеть)")
    return f"""<!doctype html>
<html lang="kk"><head><meta charset="utf-8"><title>Relay {e(row['ssid'])}</title>
<style>
body{{font-family:"DejaVu Sans",Arial,sans-serif;margin:0}}
.card{{width:180mm;border:1px solid #000;padding:6mm;margin:6mm auto;page-break-after:always}}
.codes{{display:flex;gap:6mm}} .codes figure{{margin:0;text-align:center}} img{{width:52mm;height:52mm}}
.net{{font-size:16pt}} code{{word-break:break-all;font-size:9pt}} h3{{margin:2mm 0 0}} ol{{margin:1mm 0}}
</style></head><body><div class="card">
<p class="net">Wi-Fi: <b class="ssid">{e(row['ssid'])}</b><br>Құпиясөз / Пароль / Password: <b class="wifi-password">{pw}</b></p>
<div class="codes">
<figure><img class="qr-wifi" alt="Wi-Fi" src="{img(qr_png(wifi))}"><figcaption>1. Wi-Fi</figcaption></figure>
<figure><img class="qr-telegram" alt="Telegram" src="{img(qr_png(tg))}"><figcaption>2. Telegram</figcaption></figure>{third}
</div>
<p><code class="tg-link">{e(tg)}</code></p>{mt_text}
{steps}
<p><small>{e(row.get('board', ''))} · {e(row.get('mac', ''))}</small></p>
</div></body></html>
"""


def _font(size):
    from PIL import ImageFont

    for path in FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return None


def card_png(row, wifi, tg, path, mt=None):
    """The card as a 1240x1754 PNG (A5 at about 210 dpi). False if no font with Cyrillic is found."""
    from PIL import Image, ImageDraw

    big, small = _font(34), _font(20)
    if big is None:
        return False
    W, H = 1240, 1754
    im = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(im)
    y = 40
    d.text((60, y), "Wi-Fi: " + row["ssid"], font=big, fill="black")
    y += 56
    d.text((60, y), "Құпиясөз / Пароль / Password: " + (row.get("wifi_password") or "-"), font=big, fill="black")
    y += 80
    codes = [(wifi, "1. Wi-Fi"), (tg, "2. Telegram")] + ([(mt, "3. MTProto")] if mt else [])
    side, step = (500, 600) if len(codes) == 2 else (350, 400)
    for i, (payload, label) in enumerate(codes):
        q = Image.open(io.BytesIO(qr_png(payload, scale=10))).convert("RGB")
        q = q.resize((side, side), Image.NEAREST)
        im.paste(q, (60 + i * step, y))
        d.text((60 + i * step, y + side + 10), label, font=big, fill="black")
    y += side + 80
    for link in (tg, mt) if mt else (tg,):
        for k in range(0, len(link), 80):
            d.text((60, y), link[k:k + 80], font=small, fill="black")
            y += 28
    y += 20
    for _, name, lines in _steps(mt):
        d.text((60, y), name, font=big, fill="black")
        y += 48
        for n, line in enumerate(lines, 1):
            for part in _wrap(f"{n}. {line}", 90):
                d.text((80, y), part, font=small, fill="black")
                y += 28
        y += 16
    d.text((60, H - 50), f"{row.get('board', '')}  {row.get('mac', '')}", font=small, fill="black")
    png = io.BytesIO()
    im.save(png, "PNG", dpi=(210, 210))
    write_private(path, png.getvalue())
    return True


def _wrap(text, width):
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = (cur + " " + w).strip()
    return lines + ([cur] if cur else [])


def run(args):
    try:
        with open(args.inventory, newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise CliError(f"no inventory at {args.inventory}: flash boards first (`relayctl flash ... --inventory FILE`)")
    if not rows:
        raise CliError(f"{args.inventory} has no boards: nothing to print; flash boards first")
    missing = [c for c in ("mac", "ssid") if c not in rows[0]]
    if missing:
        raise CliError(f"{args.inventory}: columns {', '.join(missing)} missing: not an inventory written by "
                       "`relayctl flash`")
    outdir = Path(args.out)
    outdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    names, no_font = [], False
    for row in rows:
        if not row.get("ssid"):
            raise CliError(f"{args.inventory}: board {row['mac']} has no SSID: flashed with a firmware that has no "
                           "wifi.ssid setting; flash it again with a current build")
        wifi, tg = wifi_payload(row["ssid"], row.get("wifi_password", "")), telegram_link(row)
        mt = mtproto_link(row)
        stem = "card-" + row["mac"].replace(":", "")
        write_private(outdir / (stem + ".html"), card_html(row, wifi, tg, mt))  # the passwords, in words and codes
        if not args.no_png and not card_png(row, wifi, tg, outdir / (stem + ".png"), mt):
            no_font = True
        names.append(stem)
    index = "".join(f'<iframe src="{n}.html" style="width:100%;height:190mm;border:0"></iframe>' for n in names)
    (outdir / "index.html").write_text(f'<!doctype html><meta charset="utf-8"><title>Relay cards</title>{index}',
                                       encoding="utf-8")
    if no_font:
        out.warn("no font with Cyrillic letters found (DejaVu Sans, Noto Sans): PNG cards skipped; print the HTML "
                 "cards from a browser, or install fonts-dejavu")
    out.info(out.cards_written(len(names), outdir, "them all"))
    return 0
