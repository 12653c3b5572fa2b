"""Text on an OpenAI-compatible server (vLLM, llama.cpp server, Ollama, LM Studio…).

- generate and rewrite: ``POST /v1/chat/completions`` with the system prompt and the user's
  instruction (the server applies its model's chat template);
- continue: ``POST /v1/completions`` with the document up to the cursor as the prompt (a raw
  continuation, like the local engine); a server without that endpoint (404) gets the
  document through chat completions with the instruction to continue it.

Streaming, Stop within one poll (~50 ms), the same seed sent every time. The recipe records
the server's address (never its key), the model id and the ``system_fingerprint`` the server
returns. No Qt, no torch.
"""

from __future__ import annotations

import time
from typing import Any

from creative_studio.core.errors import Cancelled
from creative_studio.core.jobs import Asset, ModelIdentity, Request, Result
from creative_studio.core.models import ModelSource
from creative_studio.core.progress import Progress
from creative_studio.engines.openai import OpenAIClient, ServerError, StreamCut

from .generator import title_of

CONTINUE_INSTRUCTION = ("Continue the following text. Reply with the continuation only, "
                        "without repeating the text.")
MAX_CONTEXT_CHARS = 64_000


class RemoteText:
    """One model on one server (made by TextGenerator.load for ``server:`` references)."""

    def __init__(self, source: ModelSource) -> None:
        from creative_studio.core import secrets

        self.source = source  # the resolver found the server's address (or refused)
        self.client = OpenAIClient(source.url, secrets.get(f"server:{source.server}"))
        self.identity = ModelIdentity(source.name, source.ref, "", "server")

    def close(self) -> None:
        self.client.close()

    def body(self, request: Request, messages: list[dict]) -> dict[str, Any]:
        p = request.params
        return {"model": self.source.hub_id, "messages": messages,
                "temperature": p["temperature"], "top_p": p["top_p"],
                "max_tokens": p["max_tokens"], "seed": request.seed}

    def generate(self, request: Request, progress: Progress, messages: list[dict]) -> Result:
        p = request.params
        endpoint = "/chat/completions"
        body = self.body(request, messages)
        if request.task == "continue":
            endpoint = "/completions"
            body.pop("messages")
            body["prompt"] = str(p["context"])[-MAX_CONTEXT_CHARS:]
        state = {"text": "", "chunks": 0, "fingerprint": None, "usage": None,
                 "finish": None, "first": None}
        started = time.perf_counter()
        cut = ""
        try:
            try:
                self._stream(endpoint, body, progress, state)
            except ServerError as exc:
                if request.task != "continue" or exc.status != 404 or state["text"]:
                    raise
                endpoint = "/chat/completions (no /completions on this server)"
                body = self.body(request, [
                    *messages[:-1],
                    {"role": "user", "content": f"{CONTINUE_INSTRUCTION}\n\n{body['prompt']}"}])
                self._stream("/chat/completions", body, progress, state)
        except StreamCut as exc:
            if not state["text"]:
                raise
            cut = str(exc)  # what was written is kept, and marked
        elapsed = time.perf_counter() - started
        text, stopped = state["text"], progress.cancelled
        if stopped and not text:
            raise Cancelled()
        tokens = state["usage"] if isinstance(state["usage"], int) else state["chunks"]
        finish = "stopped" if stopped else "interrupted" if cut else (state["finish"] or "eos")
        progress.update(1.0, text)
        title = ("(cut off) " if cut else "") + title_of(text)
        return Result(
            assets=[Asset("text", "text/plain; charset=utf-8", text.encode("utf-8"))],
            model=self.identity, device="server", title=title,
            metadata={"tokens": tokens, "seconds": round(elapsed, 3),
                      "tokens_per_s": round(tokens / elapsed, 2) if elapsed > 0 else None,
                      "first_token_s": state["first"],
                      "finish_reason": finish, "stopped": stopped,
                      "interrupted": cut, "engine": "openai-compatible",
                      "server_url": self.source.url, "server_model": self.source.hub_id,
                      "endpoint": endpoint, "system_fingerprint": state["fingerprint"]})

    def _stream(self, endpoint: str, body: dict, progress: Progress, state: dict) -> None:
        """Stream into ``state`` (text, counts, fingerprint, seconds to the first text)."""
        started = time.perf_counter()
        max_tokens = max(1, int(body.get("max_tokens") or 1))
        for chunk in self.client.stream(endpoint, body, lambda: progress.cancelled):
            if chunk.system_fingerprint:
                state["fingerprint"] = chunk.system_fingerprint
            if chunk.completion_tokens is not None:
                state["usage"] = chunk.completion_tokens
            if chunk.finish_reason:
                state["finish"] = chunk.finish_reason
            if chunk.text:
                if state["first"] is None:
                    state["first"] = round(time.perf_counter() - started, 3)
                state["text"] += chunk.text
                state["chunks"] += 1
                progress.update(min(1.0, state["chunks"] / max_tokens), state["text"])
