"""Hugging Face Hub access, only when the user allows downloads (no Qt, lazy imports).

Whether downloads are allowed is passed in by the caller (the runner reads the user's
setting at each job), so switching it in Preferences takes effect at the next job.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .errors import ModelError

log = logging.getLogger(__name__)


def snapshot(hub_id: str, what: str = "model", *, allow_downloads: bool = False) -> Path:
    """The local folder of a Hub repository: from the cache, or downloaded when allowed."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id, local_files_only=not allow_downloads))
    except Exception as exc:  # offline, unknown repo, cache miss
        log.info("hub snapshot of %s failed: %s", hub_id, exc)
        if not allow_downloads:
            raise ModelError(f"'{hub_id}' is not in the local Hugging Face cache and downloads "
                             "are off (Preferences → Allow model downloads).") from exc
        raise ModelError(f"Could not download the {what} '{hub_id}': {exc}") from exc


def is_cached(hub_id: str) -> bool:
    """Whether a Hub repository is in the local cache (nothing is downloaded)."""
    try:
        snapshot(hub_id)
    except ModelError:
        return False
    return True
