"""Errors that carry a message meant for the user (GUI dialogs and CLI alike)."""

from __future__ import annotations

import errno


class StudioError(Exception):
    """An error whose message is shown to the user as is."""


class BadInput(StudioError):
    """The request cannot be run as given (empty prompt, wrong value...)."""


class ModelError(StudioError):
    """A model is missing, corrupt or cannot be loaded."""


class ProjectError(StudioError):
    """A project file cannot be opened or written."""


class Cancelled(Exception):
    """Raised inside a job when the user cancelled it."""


class OutOfMemory(StudioError):
    """The model ran out of memory (the runner frees every loaded model)."""


_OOM_CLASSES = ("OutOfMemoryError",)  # torch.OutOfMemoryError, torch.cuda.OutOfMemoryError
_OOM_WORDS = ("out of memory", "can't allocate memory", "defaultcpuallocator")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an exception means memory ran out: by its type (MemoryError, OutOfMemory,
    torch's OutOfMemoryError), or for the allocator errors torch raises as plain
    RuntimeError on the CPU, by their message."""
    if isinstance(exc, MemoryError | OutOfMemory):
        return True
    if any(cls.__name__ in _OOM_CLASSES for cls in type(exc).__mro__):
        return True
    if isinstance(exc, RuntimeError):
        low = str(exc).lower()
        return any(word in low for word in _OOM_WORDS)
    return False


def describe(exc: BaseException) -> str:
    """A one-paragraph message for any exception, clear enough to show to a user."""
    if isinstance(exc, StudioError) and not isinstance(exc, OutOfMemory):
        return str(exc)
    text = str(exc)
    if is_out_of_memory(exc):
        return ("Out of memory while running the model: try a smaller model, fewer tokens "
                "or a smaller batch, or close other programs.")
    if isinstance(exc, FileNotFoundError):
        return f"File not found: {exc.filename or text}"
    if isinstance(exc, PermissionError):
        return f"Permission denied: {exc.filename or text}"
    if isinstance(exc, OSError) and (exc.errno == errno.ENOSPC or "No space left" in text):
        return "The disk is full: free some space and try again."
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        return (f"The disk is read-only: {exc.filename or text}. Choose a folder you can "
                "write to.")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
