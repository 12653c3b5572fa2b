"""A client for OpenAI-compatible text servers: vLLM, llama.cpp's llama-server, Ollama,
LM Studio, TGI, SGLang (no Qt, no torch).

Every reply is untrusted input: sizes are bounded, JSON types are checked, and anything
unexpected becomes a ``ServerError`` with a plain message. Streams (Server-Sent Events) are
read on a helper thread, so Stop closes the stream at once however slow the server is.
Connection errors are retried with backoff (the request never reached the server); nothing
that the server may have started is ever sent again.
"""

from __future__ import annotations

import html
import json
import logging
import math
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import StudioError

log = logging.getLogger(__name__)
MAX_LINE = 1 << 20  # one SSE line
MAX_STREAM = 32 << 20  # a whole reply
MAX_BODY = 4 << 20  # a non-streamed reply (/v1/models, errors)
MAX_MODELS = 10_000
CONNECT_TRIES = 3
POLL = 0.05  # how often a waiting stream looks at Stop (s)


class ServerError(StudioError):
    """A server could not be used; the message says why in plain words."""

    def __init__(self, message: str, status: int = 0, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ServerGone(ServerError):
    """The server cannot be reached, or stopped answering mid-job: nothing of the job was
    kept, so it may run again elsewhere (workers/runner.py re-queues pool jobs)."""


class NotOnServer(ServerError):
    """The server does not have the model (another server of a pool may)."""


class StreamCut(ServerError):
    """The stream ended before the server said it was done: what came is kept."""


@dataclass
class Chunk:
    """One piece of a streamed reply."""

    text: str = ""
    finish_reason: str | None = None
    system_fingerprint: str | None = None
    completion_tokens: int | None = None
    # the chunk's tokens with the server's most likely alternatives (``logprobs``):
    # (token text, its probability, [(alternative, probability)…]); empty when not sent
    tokens: list = field(default_factory=list)


def api_base(url: str) -> str:
    """``http://host:port`` or ``…/v1`` → the ``…/v1`` base the API lives under."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


class OpenAIClient:
    def __init__(self, url: str, api_key: str = "", *, connect_timeout: float = 5.0,
                 read_timeout: float = 120.0, transport: Any = None) -> None:
        import httpx

        self.base = api_base(url)
        self.url = url
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(
            headers=headers, transport=transport, follow_redirects=False,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout))
        self.read_timeout = read_timeout

    def close(self) -> None:
        self._http.close()

    # -- requests ---------------------------------------------------------------------------
    def _send(self, method: str, path: str, body: dict | None = None, stream: bool = False):
        """The response of a request; connection errors are retried (0.5 s, 1 s), every
        other failure becomes a ServerError."""
        import httpx

        request = self._http.build_request(method, self.base + path, json=body)
        delay = 0.5
        for attempt in range(CONNECT_TRIES):
            try:
                response = self._http.send(request, stream=True)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == CONNECT_TRIES - 1:
                    raise ServerGone(f"Cannot reach the server at {self.url} ({_reason(exc)})."
                                      " Is it running, and is the address right?") from exc
                time.sleep(delay)
                delay *= 2
            except httpx.TimeoutException as exc:
                raise ServerError(f"The server at {self.url} did not answer within "
                                  f"{self.read_timeout:g} s.") from exc
            except httpx.HTTPError as exc:
                raise ServerError(f"The request to {self.url} failed ({_reason(exc)}).") \
                    from exc
        if response.status_code >= 400:
            try:
                detail = _error_detail(_error_body(response, 64 << 10))
            finally:
                response.close()
            raise _status_error(response.status_code, detail, self.url,
                                response.headers.get("retry-after"))
        if not stream:
            try:
                return _json_object(_read_bounded(response, MAX_BODY), self.url)
            finally:
                response.close()
        return response

    def models(self) -> list[str]:
        """The model ids the server lists (``GET /v1/models``)."""
        reply = self._send("GET", "/models")
        data = reply.get("data")
        if not isinstance(data, list):
            raise _garbage(self.url, "no model list")
        ids = [m["id"] for m in data[:MAX_MODELS]
               if isinstance(m, dict) and isinstance(m.get("id"), str) and len(m["id"]) < 512]
        return ids

    def stream(self, path: str, body: dict, cancelled: Callable[[], bool]) -> Iterator[Chunk]:
        """Chunks of a streamed ``/chat/completions`` or ``/completions`` reply. Returns
        early (closing the stream) once ``cancelled()`` is true; raises StreamCut when the
        stream breaks off before the server finished."""
        response = self._send("POST", path, {**body, "stream": True}, stream=True)
        lines: queue.Queue = queue.Queue(maxsize=1024)
        done = object()

        def read() -> None:
            total = 0
            try:
                for line in response.iter_lines():
                    total += len(line)
                    if len(line) > MAX_LINE or total > MAX_STREAM:
                        lines.put(_garbage(self.url, "a reply larger than the studio reads"))
                        return
                    lines.put(line)
            except Exception as exc:  # cut connection, read timeout, closed by Stop
                lines.put(exc)
                return
            lines.put(done)

        reader = threading.Thread(target=read, name="studio-sse", daemon=True)
        reader.start()
        finished = False
        try:
            while True:
                if cancelled():
                    return
                try:
                    item = lines.get(timeout=POLL)
                except queue.Empty:
                    continue
                if item is done:
                    if not finished:
                        raise StreamCut(f"The server at {self.url} ended the reply before "
                                        "saying it was done.")
                    return
                if isinstance(item, ServerError):
                    raise item
                if isinstance(item, Exception):
                    if cancelled():
                        return
                    raise StreamCut(f"The connection to {self.url} broke off mid-reply "
                                    f"({_reason(item)}).") from item
                chunk = _sse_chunk(item, self.url)
                if chunk is _DONE:
                    finished = True
                    continue
                if chunk is None:
                    continue
                if chunk.finish_reason:
                    finished = True
                yield chunk
        finally:
            response.close()  # ends the reader's read at once


_DONE: Any = object()


def _sse_chunk(line: str, url: str) -> Chunk | None:
    """One SSE line → a Chunk, _DONE, or None (comments, other fields, keep-alives)."""
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if payload == "[DONE]":
        return _DONE
    if not payload:
        return None
    data = _json_object(payload.encode("utf-8"), url, "a line that is not JSON")
    if isinstance(data.get("error"), dict | str):
        raise ServerError(f"The server stopped with an error: {_error_detail(data)}")
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise _garbage(url, "no 'choices'")
    chunk = Chunk()
    fingerprint = data.get("system_fingerprint")
    if isinstance(fingerprint, str) and len(fingerprint) < 256:
        chunk.system_fingerprint = fingerprint
    usage = data.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int) \
            and not isinstance(usage.get("completion_tokens"), bool):
        chunk.completion_tokens = usage["completion_tokens"]
    if choices:
        choice = choices[0]
        if not isinstance(choice, dict):
            raise _garbage(url, "a choice that is not an object")
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        if text is not None and not isinstance(text, str):
            raise _garbage(url, "text that is not a string")
        chunk.text = text or ""
        reason = choice.get("finish_reason")
        if reason is not None and not isinstance(reason, str):
            raise _garbage(url, "a finish reason that is not a string")
        chunk.finish_reason = reason[:64] if reason else None
        chunk.tokens = _logprobs(choice.get("logprobs"))
    return chunk


MAX_TOP = 20  # alternatives read per token (servers allow at most 20)


def _probability(logprob: Any) -> float | None:
    if isinstance(logprob, bool) or not isinstance(logprob, int | float) \
            or not math.isfinite(logprob) or logprob > 0.001:
        return None
    return round(math.exp(max(logprob, -100.0)), 4)


def _logprobs(data: Any) -> list:
    """A choice's ``logprobs`` → [(token, probability, [(alternative, probability)…])]:
    chat completions (``content``: token, logprob, top_logprobs) and completions
    (``tokens``, ``token_logprobs``, ``top_logprobs`` as {token: logprob}). Untrusted: what
    does not have that shape is left out, never raised."""
    found: list = []
    if not isinstance(data, dict):
        return found
    content = data.get("content")
    if isinstance(content, list):
        for entry in content[:MAX_TOP * 50]:
            if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
                return []
            top = entry.get("top_logprobs")
            shown = [(t["token"][:200], p) for t in (top if isinstance(top, list) else [])
                     [:MAX_TOP] if isinstance(t, dict) and isinstance(t.get("token"), str)
                     and (p := _probability(t.get("logprob"))) is not None]
            found.append((entry["token"][:200], _probability(entry.get("logprob")), shown))
        return found
    tokens, chosen, top = (data.get(k) for k in ("tokens", "token_logprobs", "top_logprobs"))
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        return []
    chosen = chosen if isinstance(chosen, list) else []
    top = top if isinstance(top, list) else []
    for index, token in enumerate(tokens[:MAX_TOP * 50]):
        alternatives = top[index] if index < len(top) and isinstance(top[index], dict) else {}
        shown = [(str(t)[:200], p) for t, p in ((t, _probability(lp)) for t, lp in
                                                 list(alternatives.items())[:MAX_TOP])
                 if p is not None]
        shown.sort(key=lambda pair: -pair[1])
        found.append((token[:200], _probability(chosen[index]) if index < len(chosen)
                      else None, shown))
    return found


def _read_bounded(response, limit: int) -> bytes:
    data = b""
    for part in response.iter_bytes():
        data += part
        if len(data) > limit:
            raise ServerError("The server's reply is larger than the studio reads.")
    return data


def _error_body(response, limit: int) -> bytes:
    """The start of a refusal's body (at most ``limit`` bytes; the rest is not read): a
    refusal is said by its status and its reason, whatever its page weighs, and a body that
    breaks off reads as what came."""
    import httpx

    data = b""
    try:
        for part in response.iter_bytes():
            data += part
            if len(data) >= limit:
                break
    except httpx.HTTPError:
        pass
    return data[:limit]


def _json_object(data: bytes, url: str, what: str = "a reply that is not JSON") -> dict:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise _garbage(url, what) from None
    if not isinstance(value, dict):
        raise _garbage(url, "a reply that is not a JSON object")
    return value


def _error_detail(data: bytes | dict) -> str:
    """The server's own error message, if it sent one we can read (at most 300 chars)."""
    try:
        value = json.loads(data) if isinstance(data, bytes) else data
    except (ValueError, RecursionError):
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else ""
        return _plain(text)[:300]
    error = value.get("error") if isinstance(value, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    if not isinstance(error, str) and isinstance(value, dict):
        error = value.get("detail") or value.get("message")
    return error[:300] if isinstance(error, str) else ""


def _plain(text: str) -> str:
    """An error page as one line of its words: a proxy's or server's HTML 404 page says its
    <title> (or its text without tags), never its markup pasted into a message."""
    if "<" in text and ">" in text:
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        text = title.group(1) if title else re.sub(r"<[^>]*>", " ", text)
        text = html.unescape(text)
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _status_error(status: int, detail: str, url: str, retry_after: str | None) -> ServerError:
    said = f" The server said: {detail}" if detail else ""
    if status in (401, 403):
        return ServerError(f"The server at {url} refused the API key ({status}): check the key "
                           f"(the window: Preferences → Servers; the command line: "
                           f"creative-studio servers add NAME URL --key-stdin).{said}", status)
    if status == 404:
        return ServerError(f"The server at {url} has no such model or endpoint (404).{said}",
                           status)
    if status == 429:
        wait = None
        try:
            wait = float(retry_after) if retry_after else None
        except ValueError:
            wait = None
        when = f" It asks to retry in {wait:g} s." if wait is not None else ""
        return ServerError(f"The server at {url} is busy (429).{when}{said}", status, wait)
    if status >= 500:
        return ServerError(f"The server at {url} failed ({status}).{said}", status)
    return ServerError(f"The server at {url} refused the request ({status}).{said}", status)


def _garbage(url: str, what: str) -> ServerError:
    return ServerError(f"The server at {url} answered something that is not an "
                       f"OpenAI-compatible reply ({what}).")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text[:200] if text else type(exc).__name__)
