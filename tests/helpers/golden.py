"""Golden directories: rendered files ({name: text}) compared with the files kept under tests/*/golden/CASE."""

import os
import shutil


def golden_dir(d, files):
    """files are exactly d's files, name for name and text for text; RELAY_UPDATE_GOLDEN=1 rewrites d instead."""
    if os.environ.get("RELAY_UPDATE_GOLDEN"):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for name, text in files.items():
            (d / name).write_text(text)
    assert sorted(files) == sorted(p.name for p in d.iterdir()), d.name
    for name, text in files.items():
        assert text == (d / name).read_text(), f"{d.name}/{name} differs; RELAY_UPDATE_GOLDEN=1 if intended"
