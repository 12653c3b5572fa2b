"""The engines a user runs elsewhere: named servers kept in the settings (no Qt).

A server is a name, a base URL and a kind: "openai" (any OpenAI-compatible text server —
vLLM, llama.cpp's llama-server, Ollama, LM Studio, TGI, SGLang) or "comfyui" (a ComfyUI
server: images). A plugin's manifest says which kinds its generator drives (``servers``). Its API key is a secret in
the OS keyring (core/secrets.py) under ``server:<name>``, never in the settings file. Models
on a server are referenced as ``server:<name>/<model id>``; ``server:*/<model id>`` is "any
of my servers that has it" (a batch is spread over them: workers/runner.py).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from . import secrets
from .errors import BadInput

KINDS = {"openai": "OpenAI-compatible text (vLLM, llama.cpp, Ollama, LM Studio…)",
         "comfyui": "ComfyUI (images)"}
ANY = "*"  # server:*/<model>: any server of the plugin's kinds
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}\Z")  # (not "$": it takes a "\n")


@dataclass(frozen=True)
class ServerConfig:
    name: str
    url: str
    kind: str = "openai"

    @property
    def secret_name(self) -> str:
        return f"server:{self.name}"

    def api_key(self) -> str:
        return secrets.get(self.secret_name)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def checked(cls, name: str, url: str, kind: str = "openai") -> ServerConfig:
        """A server as the user typed it, or BadInput saying what is wrong."""
        name, url = name.strip(), url.strip().rstrip("/")
        if not _NAME.match(name):
            raise BadInput("A server name is 1–40 letters, digits, spaces, '.', '_' or '-' "
                           "(no '/').")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInput(f"'{url}' is not a server address: use http://host:port (or "
                           "https://…).")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise BadInput("Put the API key in its own field, not in the address.")
        if kind not in KINDS:
            raise BadInput(f"Unknown server kind '{kind}'.")
        return cls(name, url, kind)


def config_of(entry: Any) -> ServerConfig | None:
    """A settings entry as a server, or None when it does not read as one."""
    if not isinstance(entry, dict):
        return None
    try:
        return ServerConfig.checked(str(entry.get("name", "")), str(entry.get("url", "")),
                                    str(entry.get("kind", "openai")))
    except BadInput:
        return None


def servers_of(settings: Any) -> list[ServerConfig]:
    """The valid servers of a Settings object (entries that do not check are left out)."""
    found = (config_of(entry) for entry in getattr(settings, "servers", None) or [])
    return [server for server in found if server is not None]


def find(settings: Any, name: str) -> ServerConfig | None:
    return next((s for s in servers_of(settings) if s.name == name), None)


def of_kinds(settings: Any, kinds: Any) -> list[ServerConfig]:
    """The user's servers of these kinds (all of them when ``kinds`` is empty)."""
    return [s for s in servers_of(settings) if not kinds or s.kind in kinds]
