"""relayctl: one table maps each verb to the module that implements it.

Each verb module offers add_arguments(parser) and run(args) -> exit status.
Expected failures raise CliError; anything else is a bug and keeps its traceback.
"""

import argparse
import importlib
import sys

from relayctl import out
from relayctl.errors import CliError

# verb -> (module, one-line help). Modules load only when their verb runs.
VERBS = {
    "run": ("relayctl.cmd_run", "run the relay on this computer"),
}


def build_parser():
    p = argparse.ArgumentParser(prog="relayctl", description="Build, flash, set up and run Relay.")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for verb, (modname, help_text) in VERBS.items():
        mod = importlib.import_module(modname)
        sp = sub.add_parser(verb, help=help_text, description=(mod.__doc__ or help_text).strip())
        mod.add_arguments(sp)
        sp.set_defaults(_run=mod.run)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        status = args._run(args)
    except CliError as e:
        out.error(str(e))
        return e.status
    except KeyboardInterrupt:
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
