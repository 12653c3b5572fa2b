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

from .alternatives import ALTERNATIVES
from .alternatives import MAX_TOKENS as MAX_ALTERNATIVE_TOKENS
from .decoding import list_formats, list_from_json
from .generator import TextGenerator, text_result
from .story import continuation, counted

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
                "max_tokens": p["max_tokens"], "seed": request.seed,
                # the token alternatives view (a server that refuses them is asked again
                # without)
                "logprobs": True, "top_logprobs": ALTERNATIVES}

    def generate(self, request: Request, progress: Progress) -> Result:
        items = int(request.params.get("items", 0) or 0) if request.task == "generate" else 0
        messages = TextGenerator.messages(request, context_chars=CHAT_CONTEXT_CHARS,
                                          json_list=bool(items))
        endpoint = "/chat/completions"
        body = self.body(request, messages)
        if request.task == "continue":
            endpoint = "/completions"
            body.pop("messages")
            body.pop("top_logprobs")
            body["logprobs"] = ALTERNATIVES
            body["prompt"] = continuation(request, MAX_CONTEXT_CHARS)
        state = {"text": "", "chunks": 0, "fingerprint": None, "usage": None,
                 "finish": None, "first": None, "alternatives": []}
        started = time.perf_counter()
        cut = ""
        try:
            try:
                self._stream_any(endpoint, self._fallbacks(body, items), progress, state)
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
        alternatives = [a for a in state["alternatives"] if a[0] < len(text)]
        listed = {}
        if items and not stopped:  # the JSON list as the numbered list llama.cpp writes
            text, problem = list_from_json(text, items)
            alternatives = []  # they point into the JSON
            listed = {"items_note": problem} if problem else {}
        tokens = state["usage"] if isinstance(state["usage"], int) else state["chunks"]
        finish = "stopped" if stopped else "interrupted" if cut else (state["finish"] or "eos")
        progress.update(1.0, text)
        return text_result(text, self.identity, "server", tokens, elapsed, finish,
                           title_prefix="(cut off) " if cut else "",
                           first_token_s=state["first"], interrupted=cut,
                           engine="openai-compatible", server_url=self.source.url,
                           server_model=self.source.hub_id, endpoint=endpoint,
                           system_fingerprint=state["fingerprint"],
                           alternatives=alternatives, **listed,
                           prompt_parts=self.parts(request))

    @staticmethod
    def _fallbacks(body: dict, items: int) -> list[dict]:
        """The request bodies to try in turn: as asked (a list: OpenAI's json_schema), the
        list as llama.cpp server's json_object, then each without logprobs — servers that
        refuse one of these answer 400, 422 or (llama-cpp-python) 500 before any text."""
        bodies = [{**body, "response_format": form} for form in list_formats(items)] \
            if items else [body]
        return bodies + [{k: v for k, v in b.items() if k not in ("logprobs", "top_logprobs")}
                         for b in bodies]

    def _stream_any(self, endpoint: str, bodies: list[dict], progress: Progress,
                    state: dict) -> None:
        for index, body in enumerate(bodies):
            try:
                self._stream(endpoint, body, progress, state)
                return
            except ServerError as exc:
                if exc.status not in (400, 422, 500) or state["text"] \
                        or index == len(bodies) - 1:
                    raise

    @staticmethod
    def parts(request: Request) -> list[dict[str, Any]]:
        """What the server was sent, part by part, its tokens estimated (4 characters
        each: a server does not say how its tokenizer splits each part)."""
        shown = Request.from_dict(request.to_dict())
        limit = MAX_CONTEXT_CHARS if request.task == "continue" else CHAT_CONTEXT_CHARS
        context = str(request.params.get("context", ""))
        shown.params["context"] = context[-limit:]
        left_out = len(context[:-limit].split()) if len(context) > limit else 0
        return counted(shown, lambda text: -(-len(text) // 4), 0, left_out, estimated=True)

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
            at = len(state["text"])
            for token, probability, shown in chunk.tokens:
                if len(state["alternatives"]) < MAX_ALTERNATIVE_TOKENS and shown:
                    state["alternatives"].append(
                        [at, probability, [[t, p] for t, p in shown[:ALTERNATIVES]]])
                at += len(token)
            if chunk.text:
                if state["first"] is None:
                    state["first"] = round(time.perf_counter() - started, 3)
                state["text"] += chunk.text
                state["chunks"] += 1
                progress.update(min(1.0, state["chunks"] / max_tokens), state["text"])
