"""The exception type for mistakes a user can fix (bad config, input, workdir or file).

Entry points (`video_s3d.main`, the quickstart, the CLIs) print a `UserError`'s message as
one line and exit; anything else is a bug in our code or a library and keeps its traceback.
Raise it at validation sites, with a sentence that says what to do.
"""


class UserError(ValueError):
    """A mistake the user can fix; the message says how. (A ValueError for older callers.)"""


class UserFileError(UserError, FileNotFoundError):
    """A file or folder the user named is missing or unusable (also a FileNotFoundError)."""
