"""The one error type the CLI reports as a single line (exit code 2) instead of a traceback."""


class ConfigError(ValueError):
    """Bad input from the user: a config value, a file, an environment that cannot be used."""
