"""Hugging Face Hub access, only when the user allows downloads (no Qt, lazy imports)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelError


def downloads_allowed() -> bool:
    return os.environ.get("CREATIVE_STUDIO_ALLOW_DOWNLOADS", "0") == "1"


def snapshot(hub_id: str, what: str = "model") -> Path:
    """The local folder of a Hub repository: from the cache, or downloaded when allowed."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id, local_files_only=not downloads_allowed()))
    except Exception as exc:  # offline, unknown repo, cache miss
        if not downloads_allowed():
            raise ModelError(f"'{hub_id}' is not in the local Hugging Face cache and downloads "
                             "are off (Preferences → Allow model downloads).") from exc
        raise ModelError(f"Could not download the {what} '{hub_id}': {exc}") from exc
