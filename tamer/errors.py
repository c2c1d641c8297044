"""The error types the CLI reports as a single line (exit code 2) instead of a traceback."""


class ConfigError(ValueError):
    """Bad input from the user: a config value, a file, an environment that cannot be used."""


class RunError(ConfigError):
    """A run that cannot go on: the env or the model produced something unusable (a non-finite reward,
    observation or value), or a sweep's worker died. Reported like ConfigError: one line, exit code 2."""
