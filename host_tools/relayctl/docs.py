"""Regenerate README.md's config.json table from the firmware's SCHEMA: `make docs`.

The table sits between <!-- config-keys --> and <!-- /config-keys -->;
tests check that it matches, so a new key cannot go undocumented.
"""

import json

from relayctl import paths

START, END = "<!-- config-keys -->", "<!-- /config-keys -->"


def table():
    SCHEMA = paths.firmware_module("relay.config").SCHEMA
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for key, default, _check, meaning in SCHEMA:
        rows.append(f"| `{key}` | `{json.dumps(default)}` | {meaning} |")
    return "\n".join(rows)


def render(readme):
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + START + "\n" + table() + "\n" + END + tail


def render_boards(readme):
    """boards/README.md's schema table, from host_tools/relayctl/boards/schema.py."""
    from relayctl.boards import schema

    head = "| key | where | default | meaning |"
    start = readme.index(head)
    end = start
    lines = readme[start:].split("\n")
    n = 0
    while n < len(lines) and lines[n].startswith("|"):
        n += 1
    end = start + len("\n".join(lines[:n])) + 1
    return readme[:start] + schema.markdown() + readme[end:]


def main():
    for path, fn in ((paths.ROOT / "README.md", render), (paths.BOARDS / "README.md", render_boards)):
        text = path.read_text()
        new = fn(text)
        if new != text:
            path.write_text(new)
            print(f"{path.relative_to(paths.ROOT)}: table updated")


if __name__ == "__main__":
    main()
