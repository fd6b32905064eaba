"""Child processes that end with relayctl: a relay or an engine must not run on unseen after relayctl is killed
outright (SIGKILL, an OOM kill), holding its ports and the uplink."""

import signal


def die_with_parent(signum=signal.SIGTERM):
    """A preexec_fn: in the child before exec, ask Linux to send it signum when its parent dies (PR_SET_PDEATHSIG).
    Elsewhere (or without ctypes) nothing happens: the child then outlives a killed relayctl, as before. The child
    also gets SIGINT's default back: started from a background job of a script, it would inherit SIGINT ignored,
    and the MicroPython relay's one clean stop signal would never stop it."""

    def preexec():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signum)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    return preexec
