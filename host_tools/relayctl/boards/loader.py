"""Read board profiles and site files: TOML text -> flat, line-numbered layers.

load_board(name_or_path) -> Profile (the `extends` chain merged, child wins);
load_site(path) -> Layer. Neither raises on a bad file: every problem found is
collected in .problems as `file:line: key: message` lines, so a tinkerer sees
them all at once. tomllib drops positions, so key_lines() scans the text for
`key =` lines under their [table] headers to give each key a line.
Nothing here writes files or checks values across keys (checks.py does).
"""

import difflib
import os
import re
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from relayctl import paths
from relayctl.boards import schema


class Problem:
    __slots__ = ("path", "line", "key", "message", "warning")

    def __init__(self, path, line, key, message, warning=False):
        self.path, self.line, self.key, self.message, self.warning = path, line, key, message, warning

    def __str__(self):
        where = show_path(self.path) + (f":{self.line}" if self.line else "")
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {'warning: ' if self.warning else ''}{self.message}"


def show_path(path):
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


_KEY = r'(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
_HEADER = re.compile(r"^\s*\[\[?\s*(" + _KEY + r"(?:\s*\.\s*" + _KEY + r")*)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*(" + _KEY + r"(?:\s*\.\s*" + _KEY + r")*)\s*=(.*)$")
_INLINE = re.compile(r"(?:^|[{,])\s*(" + _KEY + r")\s*=")


def _split_key(k):
    return [p.strip().strip("\"'") for p in re.findall(_KEY, k)]


def key_lines(text):
    """{dotted key: line number} for every key assigned in the TOML text."""
    lines = {}
    table = []
    entry = None  # inside the N-th [[array.of.tables]]: its keys also get "array[N].key" (each entry its own line)
    counts = {}
    in_string = None  # the closing quote of a multi-line string we are inside
    for n, line in enumerate(text.splitlines(), 1):
        if in_string:
            if in_string in line:
                in_string = None
            continue
        m = _HEADER.match(line)
        if m:
            table = _split_key(m.group(1))
            lines.setdefault(".".join(table), n)
            entry = None
            if line.lstrip().startswith("[["):
                name = ".".join(table)
                counts[name] = counts.get(name, 0) + 1
                entry = f"{name}[{counts[name]}]"
                lines[entry] = n
            continue
        m = _ASSIGN.match(line)
        if not m:
            continue
        key = table + _split_key(m.group(1))
        lines.setdefault(".".join(key), n)
        if entry is not None:
            lines.setdefault(entry + "." + ".".join(_split_key(m.group(1))), n)
        value = m.group(2).strip()
        for q in ('"""', "'''"):
            if value.startswith(q) and value.count(q) == 1:
                in_string = q
        if value.startswith("{"):
            for sub in _INLINE.findall(value):
                lines.setdefault(".".join(key + _split_key(sub)), n)
    return lines


class Layer:
    """One file: its flat values (dotted key -> value) and the line of each."""

    def __init__(self, path, kind):
        self.path = Path(path)
        self.kind = kind  # "board" or "site"
        self.values = {}
        self.lines = {}
        self.extends = None
        self.problems = []
        self.broken = False  # unreadable or not TOML: nothing in it can be checked

    def problem(self, key, message, warning=False):
        self.problems.append(Problem(self.path, self.lines.get(key), key, message, warning))


def _syntax_hint(msg):
    if msg.startswith("Invalid value"):
        return "; text needs quotes: write key = \"value\""
    if "Expected '=' after a key" in msg:
        return "; each setting is key = value"
    if "Cannot overwrite a value" in msg or "Cannot declare" in msg:
        return "; a key or [table] is set twice"
    return ""


def read_layer(path, kind):
    layer = Layer(path, kind)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        layer.problems.append(Problem(path, None, None, "no such file"))
        layer.broken = True
        return layer
    except (OSError, UnicodeDecodeError) as e:
        layer.problems.append(Problem(path, None, None, f"cannot read: {e}"))
        layer.broken = True
        return layer
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column \d+\)", msg)
        line = int(m.group(1)) if m else None
        core = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg)
        layer.problems.append(Problem(path, line, None, f"TOML syntax: {core}{_syntax_hint(core)}"))
        layer.broken = True
        return layer
    layer.lines = key_lines(text)
    _flatten(layer, data, [])
    return layer


def _flatten(layer, data, prefix):
    for k in data:
        key = ".".join(prefix + [k])
        val = data[k]
        if not prefix and k == "extends":
            if layer.kind != "board":
                layer.problem(key, "only board profiles extend others")
            elif not isinstance(val, str) or not val:
                layer.problem(key, 'expected the name of another profile, e.g. extends = "esp32-generic"')
            else:
                layer.extends = val
            continue
        field = schema.BY_KEY.get(key)
        if field:
            if field.scope not in ("any", layer.kind):
                where = "a site file (site.toml)" if field.scope == "site" else "the board profile"
                layer.problem(key, f"belongs in {where}, not here")
                continue
            layer.values[key] = val
        elif isinstance(val, dict) and key in schema.TABLES:
            _flatten(layer, val, prefix + [k])
        else:
            layer.problem(key, "unknown " + ("table" if isinstance(val, dict) else "key") + _suggest(key, k, prefix))


def _suggest(key, leaf, prefix):
    """did you mean: first among the same table's keys, then among all dotted keys."""
    p = ".".join(prefix)
    siblings = [f.key.rsplit(".", 1)[-1] for f in schema.FIELDS if (f.key.rsplit(".", 1)[0] if "." in f.key else "") == p]
    siblings += [t.rsplit(".", 1)[-1] for t in schema.TABLES if (t.rsplit(".", 1)[0] if "." in t else "") == p]
    near = difflib.get_close_matches(leaf, siblings, 1, 0.6)
    if near:
        return f' (did you mean "{near[0]}"?)'
    # a key in the wrong table: [wifi] socks_port = ... -> relay.socks_port
    for f in schema.FIELDS:
        if f.key.rsplit(".", 1)[-1] == leaf and f.key != key:
            return f' (did you mean "{f.key}"?)'
    near = difflib.get_close_matches(key, list(schema.BY_KEY), 1, 0.75)
    return f' (did you mean "{near[0]}"?)' if near else ""


class Profile:
    """A board: merged values with the file and line each came from."""

    def __init__(self, name, path):
        self.name = name
        self.path = Path(path)
        self.chain = []  # Layers, the profile itself first
        self.values = {}
        self.origin = {}  # key -> (path, line)
        self.problems = []
        self.complete = True  # False when a file of the chain is broken or missing: values are partial

    def get(self, key):
        if key in self.values:
            return self.values[key]
        return schema.default(key)

    def where(self, key):
        return self.origin.get(key, (self.path, None))


def board_names(boards_dir=None):
    d = Path(boards_dir or paths.BOARDS)
    return sorted(p.stem for p in d.glob("*.toml"))


def find_board(name, near=None):
    """A profile's path by name (beside `near` first, then boards/) or by file path."""
    if name.endswith(".toml") or os.sep in name:
        return Path(name)
    for d in ([Path(near).parent] if near else []) + [paths.BOARDS]:
        p = d / f"{name}.toml"
        if p.exists():
            return p
    return None


def load_board(name_or_path):
    path = find_board(name_or_path)
    if path is None:
        prof = Profile(name_or_path, paths.BOARDS / f"{name_or_path}.toml")
        near = difflib.get_close_matches(name_or_path, board_names(), 1, 0.6)
        hint = f' (did you mean "{near[0]}"?)' if near else "; see `relayctl boards list`"
        prof.problems.append(Problem(prof.path, None, None, f'no board profile "{name_or_path}"{hint}'))
        return prof
    prof = Profile(path.stem, path)
    seen = []
    layer = read_layer(path, "board")
    while True:
        prof.chain.append(layer)
        prof.problems += layer.problems
        seen.append(layer.path.resolve())
        if not layer.extends:
            break
        parent = find_board(layer.extends, near=layer.path)
        if parent is None:
            names = board_names(layer.path.parent) + board_names()
            near = difflib.get_close_matches(layer.extends, names, 1, 0.6)
            hint = f' (did you mean "{near[0]}"?)' if near else f"; profiles are in {show_path(paths.BOARDS)}"
            prof.problems.append(Problem(layer.path, layer.lines.get("extends"), "extends",
                                         f'no profile "{layer.extends}" to extend{hint}'))
            prof.complete = False
            break
        if parent.resolve() in seen:
            loop = " -> ".join([p.stem for p in seen] + [parent.stem])
            prof.problems.append(Problem(layer.path, layer.lines.get("extends"), "extends", f"inheritance loop: {loop}"))
            prof.complete = False
            break
        layer = read_layer(parent, "board")
    prof.complete = prof.complete and not any(layer.broken for layer in prof.chain)
    for layer in reversed(prof.chain):  # base first, so children override
        for key, val in layer.values.items():
            prof.values[key] = val
            prof.origin[key] = (layer.path, layer.lines.get(key))
    return prof


def load_site(path):
    return read_layer(path, "site")
