"""Reaching a board over SSH, for every command that does (install, wifi apply): ssh's argv, its errors in words.

Never runs ssh itself: callers run the argv with their own input and timeouts.
"""

from relayctl.errors import CliError


def ssh_argv(args):
    """ssh's argv up to the host, from the --host, --ssh-port, --identity and --ssh-option arguments."""
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    if args.ssh_port:
        argv += ["-p", str(args.ssh_port)]
    if args.identity:
        argv += ["-i", args.identity]
    for o in args.ssh_option:
        argv += ["-o", o]
    return argv + [args.host]


def ssh_error(host, stderr):
    """A CliError that says why ssh to host failed, from its stderr, and what to do."""
    s = stderr.strip()
    low = s.lower()
    if "permission denied" in low:
        why = ("the board does not accept your key; copy it with `ssh-copy-id USER@ADDR` (OpenWrt: LuCI > System > "
               "Administration > SSH-Keys) or pass --identity KEY")
    elif "connection refused" in low:
        why = "no SSH server answers; start sshd (Raspberry Pi OS: enable SSH in raspi-config) or dropbear"
    elif "host key verification failed" in low or "remote host identification has changed" in low:
        why = ("the board's host key is unknown or changed (a reinstalled board?); check it, then "
               "`ssh-keygen -R ADDR` or --ssh-option StrictHostKeyChecking=accept-new")
    elif "could not resolve" in low or "no route" in low or "timed out" in low:
        why = "the address is wrong or the board is not on this network; check the cable/Wi-Fi and the address"
    else:
        why = "check that `ssh " + host + "` works by hand"
    return CliError(f"ssh {host} failed ({s.splitlines()[-1] if s else 'no message'}): {why}")
