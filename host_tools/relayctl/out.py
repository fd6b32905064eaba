"""The one place relayctl writes to the terminal: info, warn, error, progress.

Progress lines redraw only on a TTY; colour only on a TTY and never with NO_COLOR.
"""

import os
import sys


def _color(code, text, stream):
    if os.environ.get("NO_COLOR") or not stream.isatty():
        return text
    return f"\033[{code}m{text}\033[0m"


def info(text):
    print(text, flush=True)


def warn(text):
    print(_color("33", "warning: ", sys.stderr) + text, file=sys.stderr, flush=True)


def error(text):
    print(_color("31", "relayctl: ", sys.stderr) + text, file=sys.stderr, flush=True)


def progress(text):
    if sys.stdout.isatty():
        sys.stdout.write("\r\033[K" + text)
        sys.stdout.flush()


def progress_done():
    if sys.stdout.isatty():
        sys.stdout.write("\n")
        sys.stdout.flush()


def screen(text):
    """A live view's next frame: redrawn in place on a TTY, appended otherwise (a log, a pipe)."""
    if sys.stdout.isatty():
        sys.stdout.write("\033[H\033[J")
    info(text + "\n")


def cards_written(n, directory, what="them"):
    """"1 card in cards/ (open index.html to print it)": one slash whatever the user typed, the plural only for many."""
    where = os.path.join(str(directory), "")
    return f"{n} card{'' if n == 1 else 's'} in {where} (open index.html to print {'it' if n == 1 else what})"
