"""One logger for the device. At "info" it never names a client or a destination."""

from relay.runtime import api as runtime


class Log:
    def __init__(self, level):
        self.level = level
        self.debug_on = level == "debug"

    def info(self, text):
        if self.level != "quiet":
            runtime.stdout_write(text + "\n")

    def warn(self, text):
        runtime.stderr_write("relay: " + text + "\n")

    def debug(self, text):
        if self.debug_on:
            runtime.stdout_write("debug: " + text + "\n")
