"""Text generation (no Qt here): one generator, three engines.

- GGUF files on the CPU run on **llama.cpp** (plugins/text/llama_engine.py): quantized, as
  the file is, at the speed LM Studio and Ollama get;
- transformers model folders, Hub ids and CUDA/MPS run on **transformers** (below); so do
  GGUF files where llama-cpp-python is not installed (converted once, and the result says
  why it is slower: ``engine_note``);
- ``server:`` models run on an OpenAI-compatible server (plugins/text/remote.py).

Tasks: "generate" (chat reply to an instruction), "continue" (raw continuation of the
document up to the cursor), "rewrite" (rewrite a selection following an instruction).
Tokens stream through ``progress.update(fraction, preview=text_so_far)``; Stop ends the
generation at the next token and keeps what was written. Local engines fit each request
into the model's context (plugins/text/context.py). The parameters are declared in
plugin.toml (typed and completed by the framework before ``generate`` runs). Sampling draws
from a generator of the job's own seed, so two jobs on two workers never share one.
"""

from __future__ import annotations

import re
import time
from typing import Any

from creative_studio.core.errors import BadInput, Cancelled, StudioError
from creative_studio.core.jobs import Asset, Inputs, ModelIdentity, Request, Result
from creative_studio.core.models import ModelSource
from creative_studio.core.progress import Progress

from . import models

PRESETS: dict[str, dict[str, float]] = {
    "Balanced": {"temperature": 0.7, "top_p": 0.9},
    "Creative": {"temperature": 1.0, "top_p": 0.95},
    "Precise": {"temperature": 0.2, "top_p": 0.8},
    "Deterministic": {"temperature": 0.0, "top_p": 1.0},
}
MAX_CONTEXT_TOKENS = 8192  # local engines: the model's own context, at most this
DEFAULT_REWRITE = "Rewrite the following text so that it reads better, keeping its meaning."


def title_of(text: str) -> str:
    """A result's title: its first eight words."""
    words = text.split()
    return " ".join(words[:8]) + ("…" if len(words) > 8 else "")


EMPTY = ("The model wrote nothing (it ended at once), so nothing was saved. Try again — "
         "another seed often writes on — or give an instruction and Generate.")

# how a reply that talks about the text (instead of rewriting it) tends to begin
_COMMENTARY = re.compile(
    r"^\s*(?:sure|certainly|of course|here(?:'s| is| are)|in this (?:context|sentence|text)|"
    r"this (?:sentence|text|passage|version|rewrite)|the (?:sentence|text|passage|original|"
    r"rewritten|revised)|i (?:have|'ve|would|changed|rewrote|made)|by (?:using|adding|"
    r"changing))\b", re.IGNORECASE)


def rewrite_problem(original: str, rewritten: str) -> str:
    """Why a rewrite is not one: "unchanged" (the same words), "commentary" (a reply that
    talks about the text — "In this context, the sentence is more vivid because…"), or ""."""
    def words(text: str) -> list[str]:
        return re.findall(r"[\w']+", text.lower())

    if words(original) == words(rewritten):
        return "unchanged"
    for found in (_COMMENTARY.match(rewritten), re.search(
            r"\b((?:the|this) (?:original )?(?:sentence|text|passage)) (?:is|now|uses|has)\b",
            rewritten, re.IGNORECASE)):
        # words the original itself has ("The sentence was long.") are no commentary
        if found and found.group(found.lastindex or 0).strip().lower() \
                not in original.lower():
            return "commentary"
    return ""


def text_result(text: str, identity: ModelIdentity, device: str, tokens: int, elapsed: float,
                finish: str, *, title_prefix: str = "", **metadata: Any) -> Result:
    """The Result of a text job (every engine): the text, its title and the figures. Nothing
    written is no result: stopped, the job is cancelled; else it fails, saying so (EMPTY)."""
    if not text.strip():
        if finish == "stopped":
            raise Cancelled()
        raise StudioError(EMPTY)
    return Result(
        assets=[Asset("text", "text/plain; charset=utf-8", text.encode("utf-8"))],
        model=identity, device=device, title=title_prefix + title_of(text),
        metadata={"tokens": tokens, "seconds": round(elapsed, 3),
                  "tokens_per_s": round(tokens / elapsed, 2) if elapsed > 0 else None,
                  "finish_reason": finish, "stopped": finish == "stopped", **metadata})


def sampler(temperature: float, top_p: float, generator, top_k: int = 0, min_p: float = 0.0):
    """A transformers logits processor that draws the next token itself (top-k, min-p and
    nucleus sampling with ``generator``) and leaves only that token possible, so greedy
    decoding picks it."""
    import torch
    from transformers import LogitsProcessor

    class _Draw(LogitsProcessor):
        def __call__(self, input_ids, scores):
            probs = torch.softmax(scores.float() / temperature, dim=-1)
            if top_k > 0 and top_k < probs.shape[-1]:
                kth = probs.topk(top_k, dim=-1).values[..., -1:]
                probs = probs.masked_fill(probs < kth, 0.0)
            if min_p > 0.0:
                floor = probs.max(dim=-1, keepdim=True).values * min_p
                probs = probs.masked_fill(probs < floor, 0.0)
            if top_p < 1.0:
                ordered, order = probs.sort(dim=-1, descending=True)
                outside = ordered.cumsum(dim=-1) - ordered > top_p  # the top token stays
                probs = torch.zeros_like(probs).scatter(-1, order, ordered.masked_fill(
                    outside, 0.0))
            choice = torch.multinomial(probs, 1, generator=generator)
            return torch.full_like(scores, float("-inf")).scatter(-1, choice, 0.0)

    return _Draw()


class TextGenerator:
    def __init__(self) -> None:
        self.engine: Any = None  # LlamaEngine, TransformersEngine or RemoteText
        self.identity: ModelIdentity | None = None
        self.device = "cpu"

    # -- checks before queueing --------------------------------------------------
    @staticmethod
    def validate(request: Request) -> None:
        """What the declarations cannot say: each task's own text must not be empty."""
        p = request.params
        if request.task == "generate" and not request.prompt.strip():
            raise BadInput("Write an instruction or prompt first.")
        if request.task == "continue" and not p.get("context", "").strip():
            raise BadInput("Nothing to continue: write some text, then place the cursor "
                           "after it.")
        if request.task == "rewrite" and not p.get("selection", "").strip():
            raise BadInput("Select the text to rewrite first.")

    # -- model ------------------------------------------------------------------------
    def load(self, source: ModelSource, device: str, progress: Progress) -> None:
        if source.source == "server":  # a model on an OpenAI-compatible server
            from .remote import RemoteText

            self.engine = RemoteText(source)
            self.identity = self.engine.identity
            self.device = "server"
            return
        gguf = models.kind_of(source) == "gguf"
        note = ""
        if gguf and device == "cpu":
            from . import llama_engine

            if llama_engine.available():
                progress.say(f"Loading {source.name}…")
                self.engine = llama_engine.LlamaEngine(source)
                self.identity, self.device = self.engine.identity, device
                progress.say("")
                return
            note = llama_engine.MISSING_NOTE
        self.engine = TransformersEngine(source, device, progress)
        self.engine.note = note
        self.identity, self.device = self.engine.identity, device

    def unload(self) -> None:
        if self.engine is not None:
            self.engine.close()
        self.engine = None

    # -- generation ---------------------------------------------------------------------
    @staticmethod
    def messages(request: Request, context_chars: int | None = None,
                 json_list: bool = False) -> list[dict[str, str]]:
        """The chat messages of a generate or rewrite request (system prompt first);
        ``context_chars``: keep at most that much of the document (servers; local engines
        fit the document to the context themselves); ``json_list``: a list is asked for as
        JSON (a server's structured output)."""
        from . import story

        p = request.params
        if request.task == "rewrite":
            instruction = request.prompt.strip() or DEFAULT_REWRITE
            user = (f"{instruction}\n\nText:\n{p['selection']}\n\n"
                    "Reply with the rewritten text only.")
        else:
            user = request.prompt.strip()
            if int(p.get("items", 0) or 0):
                from .decoding import list_instruction

                user += list_instruction(int(p["items"]), json_list)
            context = str(p.get("context", ""))
            if context.strip():
                if context_chars is not None:
                    context = context[-context_chars:]
                user = (f"{user}\n\nThe text so far, for context:\n"
                        f"{story.with_author_note(context, request)}")
        notes = story.notes_block(request, raw=False)
        if notes:  # the story's facts before what is asked
            user = f"{notes}\n\n{user}"
        messages = []
        if str(p["system"]).strip():
            messages.append({"role": "system", "content": str(p["system"]).strip()})
        messages.append({"role": "user", "content": user})
        return messages

    def generate(self, request: Request, progress: Progress, inputs: Inputs) -> Result:
        from . import story
        from .decoding import banned_list, find_banned, paragraph_end

        assert self.engine is not None
        progress.check()
        request = story.resolve(request)  # which story notes join, from the whole document
        local = getattr(self.engine, "name", "") == "llama.cpp"
        if int(request.params.get("items", 0) or 0) and request.task == "generate" \
                and getattr(self.engine, "name", "") == "transformers":
            raise BadInput(f"A list of exactly {request.params['items']} items is kept to by "
                           "llama.cpp's grammar or a server's structured output: choose a "
                           "GGUF model (the embedded one, or + → GGUF file…) or a server, or "
                           "set List items to Free text.")
        result = self.engine.generate(request, progress)
        if request.task == "continue" and request.params.get("paragraph") and not local:
            # llama.cpp stops at the paragraph's end itself; the others are cut there
            text = result.assets[0].data.decode("utf-8", errors="replace")
            end = paragraph_end(text)
            if end >= 0:
                result.assets[0] = Asset("text", result.assets[0].mime, text[:end].encode())
                result.metadata["finish_reason"] = "eos"
                result.metadata["alternatives"] = [
                    a for a in result.metadata.get("alternatives") or [] if a[0] < end]
        phrases = banned_list(request.params.get("banned", ""))
        if phrases and not local:  # a server or transformers: checked, not avoided
            text = result.assets[0].data.decode("utf-8", errors="replace")
            result.metadata["banned_found"] = [ph for ph in phrases
                                               if find_banned(text, [ph]) is not None]
        return result


class TransformersEngine:
    """A transformers causal LM: model folders, Hub ids, CUDA/MPS, and GGUF files converted
    once where llama.cpp is not installed."""

    name = "transformers"

    def __init__(self, source: ModelSource, device: str, progress: Progress) -> None:
        if not models.is_converted(source):
            progress.say(f"Preparing {source.name} (first use: about 30 s)…")
        else:
            progress.say(f"Loading {source.name}…")
        self.model, self.tokenizer, sha = models.load(source, device)
        progress.say("")
        self.device = device
        self.identity = ModelIdentity(source.name, source.ref, sha, source.source)
        self.note = ""  # why this engine runs a GGUF (shown in the status line)
        config = self.model.config
        self.n_ctx = min(int(getattr(config, "max_position_embeddings", 2048) or 2048),
                         MAX_CONTEXT_TOKENS)

    def close(self) -> None:
        self.model = self.tokenizer = None

    def prompt_ids(self, request: Request) -> list[int]:
        tokenizer = self.tokenizer
        if request.task == "continue":
            from .story import continuation

            return list(tokenizer(continuation(request),
                                  add_special_tokens=False)["input_ids"])
        messages = TextGenerator.messages(request)
        if getattr(tokenizer, "chat_template", None):
            return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                      tokenize=True, return_dict=True)
                        ["input_ids"])
        text = "\n\n".join(m["content"] for m in messages) + "\n\n"
        return list(tokenizer(text)["input_ids"])

    def generate(self, request: Request, progress: Progress) -> Result:
        import torch
        from transformers import (
            LogitsProcessorList,
            StoppingCriteria,
            StoppingCriteriaList,
            TextStreamer,
        )

        from .context import fit
        from .story import counted

        fitted = fit(request, self.n_ctx, lambda r: len(self.prompt_ids(r)))
        p = fitted.request.params
        max_tokens = fitted.max_tokens
        ids = torch.tensor([self.prompt_ids(fitted.request)], device=self.device)
        state = {"text": "", "tokens": 0}

        class _Streamer(TextStreamer):
            def put(self, value):  # noqa: D401 - transformers streamer protocol
                if not self.next_tokens_are_prompt:
                    state["tokens"] += int(value.numel())
                super().put(value)

            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                if text:
                    state["text"] += text
                    progress.update(min(1.0, state["tokens"] / max_tokens), state["text"])

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), progress.cancelled, dtype=torch.bool,
                                  device=input_ids.device)

        temperature = float(p["temperature"])
        processors = LogitsProcessorList()
        if temperature > 0:  # 0: greedy, the most likely token each time
            rng = torch.Generator(device=self.device).manual_seed(int(request.seed))
            processors.append(sampler(temperature, float(p["top_p"]), rng,
                                      int(p.get("top_k", 0)), float(p.get("min_p", 0.0))))
        tokenizer = self.tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else \
            tokenizer.eos_token_id
        started = time.perf_counter()
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                pad_token_id=pad, repetition_penalty=float(p["repetition_penalty"]),
                streamer=_Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True),
                stopping_criteria=StoppingCriteriaList([_Stop()]), do_sample=False,
                logits_processor=processors)
        elapsed = time.perf_counter() - started
        new_ids = output[0, ids.shape[1]:]
        text = tokenizer.decode(new_ids, skip_special_tokens=True)
        stopped = progress.cancelled
        if stopped and not text:
            raise Cancelled()
        n = int(new_ids.numel())
        finish = "stopped" if stopped else ("length" if n >= max_tokens else "eos")
        progress.update(1.0, text)
        return text_result(text, self.identity, self.device, n, elapsed, finish,
                           prompt_tokens=fitted.prompt_tokens, engine=self.name,
                           context_tokens=self.n_ctx, context_notes=fitted.notes,
                           words_left_out=fitted.words_left_out, engine_note=self.note,
                           prompt_parts=counted(fitted.request, lambda s: len(
                               tokenizer(s, add_special_tokens=False)["input_ids"]),
                               int(ids.shape[1]), fitted.words_left_out))
