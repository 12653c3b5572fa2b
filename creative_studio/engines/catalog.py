"""What a server offers and whether it answers, for every kind of server (no Qt): the one
place the Preferences page, the model lists of the panels and ``creative-studio servers test``
ask. Each call opens its own client and closes it."""

from __future__ import annotations

from typing import Any


def models(server: Any, key: str | None = None, timeout: float = 15.0,
           modality: str = "") -> list[str]:
    """The models a server offers for a plugin of ``modality``: an OpenAI-compatible
    server's model ids; a ComfyUI server's checkpoints, or its upscale models for Upscale."""
    token = server.api_key() if key is None else key
    if server.kind == "comfyui":
        from .comfyui import ComfyClient

        client = ComfyClient(server.url, token, read_timeout=timeout)
        try:
            return client.upscale_models() if modality == "upscale" else client.checkpoints()
        finally:
            client.close()
    from .openai import OpenAIClient

    client = OpenAIClient(server.url, token, read_timeout=timeout)
    try:
        return client.models()
    finally:
        client.close()


def describe(server: Any, key: str | None = None, timeout: float = 15.0) -> str:
    """One line for Test connection: what answered, and what it offers (ServerError when it
    cannot be used)."""
    token = server.api_key() if key is None else key
    access = "key accepted" if token else "no key needed"
    if server.kind == "comfyui":
        from .comfyui import ComfyClient

        client = ComfyClient(server.url, token, read_timeout=timeout)
        try:
            info = client.system_stats()
            found = client.checkpoints()
            upscalers = client.upscale_models()
        finally:
            client.close()
        return (f"{server.url} answered: {info.describe()}; {access}; "
                f"{_listed(found, 'checkpoint')}; {_listed(upscalers, 'upscale model')}")
    found = models(server, token, timeout)  # the keyring is asked once
    return f"{server.url} answered; {access}; {_listed(found, 'model')}"


def _listed(names: list[str], what: str) -> str:
    shown = ", ".join(names[:8]) + (f" … ({len(names)} in all)" if len(names) > 8 else "")
    return f"{len(names)} {what}(s): {shown or 'none listed'}"
