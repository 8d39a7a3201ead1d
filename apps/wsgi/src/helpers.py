# The Python half of libwsgi.so: wsgi.file_wrapper and wsgi.early_hints. Compiled once per process
# as the module `_rustgun_wsgi`; loading the app is rustgun-python's (`_rustgun_embed`).

import os


class FileWrapper:
    """wsgi.file_wrapper: an iterable over a file-like object's blocks. Returned by the app over a
    regular file, the bridge sends the file through the server's file-sending path instead (PEP 3333's
    optional platform-specific file handling); anything else is iterated."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __getitem__(self, key):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise IndexError

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


def regular_fd(filelike):
    """The descriptor of a file object over a regular file, after flushing what it buffers; None for
    anything else (a socket, a pipe, BytesIO, no fileno at all)."""
    import stat

    try:
        fd = filelike.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        if hasattr(filelike, "flush") and getattr(filelike, "writable", lambda: False)():
            filelike.flush()
        return fd
    except Exception:
        return None


def early_hints(headers):
    """wsgi.early_hints (gunicorn's extension for 103 Early Hints): accepted and dropped, as rustgun
    sends no interim responses."""
