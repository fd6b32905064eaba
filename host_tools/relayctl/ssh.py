"""Reaching a board over SSH, for every command that does (install, wifi apply): ssh's argv, its errors in words.

Never runs ssh itself: callers run the argv with their own input and timeouts.
"""

import shlex

from relayctl.errors import CliError

SUDO_MISSING = 97  # as_root's exit status when the login is not root and the board has no sudo


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


def as_root(command):
    """A shell line that runs command (a simple command: words, no ; or |) as root on the board: as it is when the
    login is root (OpenWrt, root@), else through `sudo -n` (Raspberry Pi OS's first user is a sudoer, not root).
    -n: sudo never waits for a password nobody can type; root_error() turns its refusal into words."""
    return (f'if [ "$(id -u)" = 0 ]; then {command}; elif command -v sudo >/dev/null 2>&1; then sudo -n {command}; '
            f'else echo "not root, and no sudo on this system" >&2; exit {SUDO_MISSING}; fi')


def as_root_sh(script):
    """as_root for a compound shell line (pipes, ;, ||)."""
    return as_root("sh -c " + shlex.quote(script))


def root_error(host, status, stderr):
    """A CliError when as_root could not become root on host (sudo wants a password, is not allowed, is missing);
    None when the failure was something else."""
    low = stderr.lower()
    user = host.split("@", 1)[0] if "@" in host else "your user"
    if status == SUDO_MISSING:
        return CliError(f"{host}: {user} is not root and the board has no sudo: log in as root (--host root@ADDR; "
                        "OpenWrt's only user is root)")
    if "a password is required" in low or "a terminal is required" in low:
        return CliError(f"{host}: sudo asks {user} for a password, which relayctl cannot type (it runs sudo -n): on "
                        f"the board, once: `echo '{user} ALL=(ALL) NOPASSWD: ALL' | sudo tee /etc/sudoers.d/010_{user}`"
                        " (Raspberry Pi OS has this for its first user), or log in as root")
    if "not in the sudoers file" in low or "is not allowed to" in low or "may not run sudo" in low:
        return CliError(f"{host}: {user} may not use sudo there: log in as root or as an admin user "
                        f"(`usermod -aG sudo {user}` as root, plus NOPASSWD as flashing.md shows)")
    return None
