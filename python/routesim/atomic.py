"""Writing an output file atomically: under a temporary name in the same
directory, renamed over the destination only when everything was written,
so that a failure (or an interruption) leaves no partial file and an
existing file as it was."""

import contextlib
import os
import tempfile

__all__ = ["replaced_on_success"]


@contextlib.contextmanager
def replaced_on_success(path):
    """Yields a temporary path next to `path`; when the with-block ends
    without an exception the temporary file replaces `path` (os.replace),
    otherwise it is removed and the exception propagates."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
