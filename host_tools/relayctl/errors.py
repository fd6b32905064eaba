"""Expected failures. main() prints `relayctl: <message>` and exits with .status."""


class CliError(Exception):
    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status
