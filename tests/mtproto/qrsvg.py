"""Read back the QR codes relayctl renders: segno's SVG (one stroked path of horizontal runs)
rasterised with Pillow, then decoded by zbarimg (Debian zbar-tools). zbarimg cannot read an SVG
that has only a viewBox, so the rows are drawn here from the path's own M/m/h commands."""

import io
import re
import shutil
import subprocess

from PIL import Image, ImageDraw


def svg_to_png(svg, scale=8):
    text = svg.decode() if isinstance(svg, bytes) else svg
    size = int(float(re.search(r'viewBox="0 0 ([\d.]+) ', text).group(1)))
    path = re.search(r' d="([^"]+)"', text).group(1)
    im = Image.new("L", (size * scale, size * scale), 255)
    d = ImageDraw.Draw(im)
    x = y = 0.0
    for cmd, args in re.findall(r"([MmHhVvz])([^MmHhVvz]*)", path):
        nums = [float(n) for n in re.findall(r"-?[\d.]+", args)]
        if cmd == "M":
            x, y = nums
        elif cmd == "m":
            x, y = x + nums[0], y + nums[1]
        elif cmd == "h":
            row = int(y)  # the stroke runs along the module row's middle (y + 0.5)
            d.rectangle([x * scale, row * scale, (x + nums[0]) * scale - 1, (row + 1) * scale - 1], fill=0)
            x += nums[0]
        else:
            raise ValueError("unexpected SVG path command " + cmd)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def decode_svg(svg):
    """The text of the QR code in svg, or None when zbarimg is missing."""
    if not shutil.which("zbarimg"):
        return None
    r = subprocess.run(["zbarimg", "-q", "--raw", "-"], input=svg_to_png(svg), capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().strip()
