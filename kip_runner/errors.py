"""The one exception type for user mistakes; the CLI prints it as one line and exits 2."""


class KipctlError(ValueError):
    """A user-facing error: bad input, missing data, incompatible checkpoint.

    Subclasses ValueError so that pure-core validation (which raises ValueError) and
    pipeline validation are handled the same way by the CLI.
    """
