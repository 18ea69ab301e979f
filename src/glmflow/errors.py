"""The one error type that glmflow raises for bad input: its message names what is wrong."""


class GlmflowError(ValueError):
    """Bad input (config, data file, column, formula): the message says which and where."""
