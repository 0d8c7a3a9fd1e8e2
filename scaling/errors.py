"""Errors the CLI turns into a one-line message and exit code 2, before any compute."""


class UsageError(Exception):
    """Bad input: a malformed file, a missing column, an impossible option."""


class ConfigError(UsageError):
    """A config key that is unknown, of the wrong type or out of range; names the key."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)
