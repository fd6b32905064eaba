"""Set a few values in a site file, keeping everything else as the person wrote it (comments, order,
layout): tomlkit. Used where relayctl writes back what it chose (`uplink setup --site`, a build's
MTProto secret).

    text = with_values(path, "mtproto", {"secrets": [...]}, comment="...")   # nothing written yet
    write(path, text)                                                          # temp file, then rename
"""

from pathlib import Path

from relayctl import files
from relayctl.errors import CliError


def with_values(path, table_name, values, comment=None, text=None):
    """The site file's new text with [table_name] holding values (the table is made when missing).
    text: the file's text as an earlier change left it (not yet written), instead of reading path."""
    import tomlkit

    path = Path(path)
    try:
        if text is None and path.exists():
            text = path.read_text(encoding="utf-8")
        doc = tomlkit.parse(text) if text is not None else tomlkit.document()
    except tomlkit.exceptions.ParseError as e:
        raise CliError(f"{path}: not valid TOML ({e}); fix it or give another --site", 2)
    table = doc.get(table_name)
    if table is None:
        table = tomlkit.table()
        doc[table_name] = table
    for key, val in values.items():
        table[key] = val
        if comment:
            table[key].comment(comment)
    return tomlkit.dumps(doc)


def write(path, text):
    """Replace the file whole (an interrupted write leaves the old one), readable by its owner only:
    a site file holds the site's passwords, secrets and perhaps a SIM PIN."""
    files.write_private(path, text)
