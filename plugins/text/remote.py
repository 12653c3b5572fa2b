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
from creative_studio.core.jobs import ModelIdentity, Request, Result
from creative_studio.core.models import ModelSource
from creative_studio.core.progress import Progress
from creative_studio.engines.openai import NotOnServer, OpenAIClient, ServerError, StreamCut

from .generator import TextGenerator, text_result

CONTINUE_INSTRUCTION = ("Continue the following text. Reply with the continuation only, "
                        "without repeating the text.")
MAX_CONTEXT_CHARS = 64_000
CHAT_CONTEXT_CHARS = 4000  # of the document given as context to a reply


class RemoteText:
    """One model on one server (made by TextGenerator.load for ``server:`` references)."""

    def __init__(self, source: ModelSource) -> None:
        from creative_studio.core import secrets

        self.source = source  # the resolver found the server's address (or refused)
        self.client = OpenAIClient(source.url, secrets.get(f"server:{source.server}"))
        self.identity = ModelIdentity(source.name, source.ref, "", "server")
        self._check_listed()

    def _check_listed(self) -> None:
        """A server that answers for any model name (llama.cpp's serves its one model under
        every name) would make a recipe claim a model that never ran: the id must be one
        the server lists (Ollama's ``name`` for ``name:latest`` too). A server without
        ``/v1/models`` is taken at its word."""
        try:
            listed = self.client.models()
        except ServerError as exc:
            if exc.status in (404, 405, 501):
                return
            raise
        wanted = self.source.hub_id
        if not listed or wanted in listed or f"{wanted}:latest" in listed:
            return
        shown = ", ".join(listed[:8]) + (f" and {len(listed) - 8} more" if len(listed) > 8
                                         else "")
        raise NotOnServer(f"The server {self.source.server} has no model '{wanted}' (it "
                          f"lists {shown}): choose one of its models.", 404)

    def close(self) -> None:
        self.client.close()

    def body(self, request: Request, messages: list[dict]) -> dict[str, Any]:
        p = request.params
        return {"model": self.source.hub_id, "messages": messages,
                "temperature": p["temperature"], "top_p": p["top_p"],
                "max_tokens": p["max_tokens"], "seed": request.seed}

    def generate(self, request: Request, progress: Progress) -> Result:
        p = request.params
        messages = TextGenerator.messages(request, context_chars=CHAT_CONTEXT_CHARS)
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
        return text_result(text, self.identity, "server", tokens, elapsed, finish,
                           title_prefix="(cut off) " if cut else "",
                           first_token_s=state["first"], interrupted=cut,
                           engine="openai-compatible", server_url=self.source.url,
                           server_model=self.source.hub_id, endpoint=endpoint,
                           system_fingerprint=state["fingerprint"])

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
