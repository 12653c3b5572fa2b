"""Errors that carry a message meant for the user (GUI dialogs and CLI alike)."""

from __future__ import annotations


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


def describe(exc: BaseException) -> str:
    """A one-paragraph message for any exception, clear enough to show to a user."""
    if isinstance(exc, StudioError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "Out of memory: try a smaller model, fewer tokens or a smaller batch."
    text = str(exc)
    low = text.lower()
    if "out of memory" in low or "can't allocate memory" in low or "defaultcpuallocator" in low:
        return ("Out of memory while running the model: try a smaller model, fewer tokens "
                "or a smaller batch, or close other programs.")
    if isinstance(exc, FileNotFoundError):
        return f"File not found: {exc.filename or text}"
    if isinstance(exc, PermissionError):
        return f"Permission denied: {exc.filename or text}"
    if isinstance(exc, OSError) and "No space left" in text:
        return "The disk is full: free some space and try again."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
