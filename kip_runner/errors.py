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


def read_error(e: BaseException) -> str:
    """A file read error for the one-line message: numpy's reply to bytes that are neither an
    .npy header nor a zip archive ("This file contains pickled (object) data. If you trust the
    file you can load it unsafely ...") becomes what it means for kipctl's files, which never
    hold pickles; anything else is passed on."""
    text = str(e)
    if "pickled" in text and "allow_pickle" in text:
        return "not an .npz/.npy file numpy can read (truncated, or another format)"
    return text
