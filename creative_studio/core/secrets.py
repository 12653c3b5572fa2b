"""API keys and tokens: kept in the OS keyring (the ``keyring`` package), never in a
project, the settings file, a log or a recipe.

Where no keyring works (a headless Linux without a Secret Service), a key is kept in this
process's memory only and the caller is told so. Tests choose their own backend with
``PYTHON_KEYRING_BACKEND`` (keyring's own switch).
"""

from __future__ import annotations

import logging
import threading

SERVICE = "creative-studio"
log = logging.getLogger(__name__)
_memory: dict[str, str] = {}
_lock = threading.Lock()


class NoKeyring(RuntimeError):
    """No OS keyring: the secret lives in memory until the studio quits."""


def _keyring():
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        return None
    return keyring


def get(name: str) -> str:
    """The secret stored under ``name`` ("" when there is none)."""
    with _lock:
        if name in _memory:
            return _memory[name]
    ring = _keyring()
    if ring is None:
        return ""
    try:
        return ring.get_password(SERVICE, name) or ""
    except Exception as exc:  # a locked or broken keyring: no key, said in the log
        log.warning("keyring read of %s failed: %s", name, type(exc).__name__)
        return ""


def put(name: str, secret: str) -> None:
    """Store (or with "" delete) a secret. Raises NoKeyring when it could only be kept in
    memory for this session."""
    ring = _keyring()
    if ring is not None:
        try:
            if secret:
                ring.set_password(SERVICE, name, secret)
            else:
                try:
                    ring.delete_password(SERVICE, name)
                except Exception:  # nothing stored: fine
                    pass
            with _lock:
                _memory.pop(name, None)
            return
        except Exception as exc:
            log.warning("keyring write of %s failed: %s", name, type(exc).__name__)
    with _lock:
        if secret:
            _memory[name] = secret
        else:
            _memory.pop(name, None)
    if secret:
        raise NoKeyring("No working OS keyring: the key is kept until the studio quits. "
                        "Install a Secret Service (GNOME Keyring, KWallet) to keep it.")
