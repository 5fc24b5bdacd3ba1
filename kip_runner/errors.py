"""The CLI's two exception types: KipctlError for user mistakes (one line, exit 2) and
RunFailed for bugs already recorded in the run directory (one line, exit 1)."""


class KipctlError(ValueError):
    """A user-facing error: bad input, missing data, incompatible checkpoint.

    Subclasses ValueError so that pure-core validation (which raises ValueError) and
    pipeline validation are handled the same way by the CLI.
    """


class RunFailed(Exception):
    """An unexpected (non-user) failure, already recorded in the run directory (traceback.txt,
    RunDir.record_failure); the message is one line. The CLI exits 1."""
