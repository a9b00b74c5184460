"""Recognising a failure to write a file for want of room (a full disk, a quota, a file-size limit),
whichever library met it: trice's own writes raise ``OSError``, but torch and safetensors raise their
own exception types, so the ``trice`` command tells the user what happened in one line instead of
a traceback (:func:`write_failure`)."""

from __future__ import annotations

import errno

# What libraries say when writing a file failed for want of room (a full disk, a quota, a file-size
# limit): torch.save raises RuntimeError ("iostream error", "PytorchStreamWriter failed writing
# file"), safetensors its own error naming the OS error's kind.
_WRITE_FAILURES = (
    "No space left on device",
    "Disk quota exceeded",
    "File too large",
    "iostream error",
    "PytorchStreamWriter failed",
    "file write failed",
    "StorageFull",
    "FileTooLarge",
)
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_failure(err: BaseException) -> str | None:
    """What went wrong, in one line, when ``err`` (or an exception it was raised from) is a failure to
    write a file for want of room; None for anything else."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).strip().splitlines()[0][:300] if str(current).strip() else type(current).__name__
        if (isinstance(current, OSError) and current.errno in _NO_ROOM) or any(p in str(current) for p in _WRITE_FAILURES):
            return f"{type(current).__name__}: {text}"
        current = current.__cause__ or current.__context__
    return None
