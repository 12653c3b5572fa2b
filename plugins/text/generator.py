"""Text generation with a transformers causal LM (no Qt here).

Tasks: "generate" (chat reply to an instruction), "continue" (raw continuation of the
document up to the cursor), "rewrite" (rewrite a selection following an instruction).
Tokens stream through ``progress.update(fraction, preview=text_so_far)``; Stop ends the
generation at the next token and keeps what was written. The parameters are declared in
plugin.toml (typed and completed by the framework before ``generate`` runs). Sampling draws
from a ``torch.Generator`` of the job's own, so two jobs on two workers never share a seed.
"""

from __future__ import annotations

import time
from typing import Any

from creative_studio.core.errors import BadInput, Cancelled
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
MAX_CONTEXT_TOKENS = 2048
DEFAULT_REWRITE = "Rewrite the following text so that it reads better, keeping its meaning."


def title_of(text: str) -> str:
    """A result's title: its first eight words."""
    words = text.split()
    return " ".join(words[:8]) + ("…" if len(words) > 8 else "")


def sampler(temperature: float, top_p: float, generator):
    """A transformers logits processor that draws the next token itself (nucleus sampling
    with ``generator``) and leaves only that token possible, so greedy decoding picks it."""
    import torch
    from transformers import LogitsProcessor

    class _Draw(LogitsProcessor):
        def __call__(self, input_ids, scores):
            probs = torch.softmax(scores.float() / temperature, dim=-1)
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
        self.model = None
        self.tokenizer = None
        self.identity: ModelIdentity | None = None
        self.device = "cpu"
        self.remote = None  # a RemoteText when the model is on a server

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

            self.remote = RemoteText(source)
            self.identity = self.remote.identity
            self.device = "server"
            return
        if not models.is_converted(source):
            progress.say(f"Preparing {source.name} (first use: about 30 s)…")
        else:
            progress.say(f"Loading {source.name}…")
        self.model, self.tokenizer, sha = models.load(source, device)
        progress.say("")
        self.device = device
        self.identity = ModelIdentity(source.name, source.ref, sha, source.source)

    def unload(self) -> None:
        self.model = self.tokenizer = None
        if self.remote is not None:
            self.remote.close()
            self.remote = None

    # -- generation ---------------------------------------------------------------------
    @staticmethod
    def messages(request: Request) -> list[dict[str, str]]:
        """The chat messages of a generate or rewrite request (system prompt first)."""
        p = request.params
        if request.task == "rewrite":
            instruction = request.prompt.strip() or DEFAULT_REWRITE
            user = (f"{instruction}\n\nText:\n{p['selection']}\n\n"
                    "Reply with the rewritten text only.")
        else:
            user = request.prompt.strip()
            if str(p.get("context", "")).strip():
                user = (f"{user}\n\nThe text so far, for context:\n"
                        f"{str(p['context'])[-4000:]}")
        messages = []
        if str(p["system"]).strip():
            messages.append({"role": "system", "content": str(p["system"]).strip()})
        messages.append({"role": "user", "content": user})
        return messages

    def build_inputs(self, request: Request) -> dict[str, Any]:
        tokenizer = self.tokenizer
        p = request.params
        if request.task == "continue":
            ids = tokenizer(str(p["context"]), return_tensors="pt",
                            add_special_tokens=False)["input_ids"]
            ids = ids[:, -MAX_CONTEXT_TOKENS:]
            import torch

            return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        messages = self.messages(request)
        if getattr(tokenizer, "chat_template", None):
            encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                    return_tensors="pt", return_dict=True)
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\n\n"
            encoded = tokenizer(text, return_tensors="pt")
        return {"input_ids": encoded["input_ids"][:, -MAX_CONTEXT_TOKENS:],
                "attention_mask": encoded["attention_mask"][:, -MAX_CONTEXT_TOKENS:]}

    def generate(self, request: Request, progress: Progress, inputs: Inputs) -> Result:
        if self.remote is not None:
            progress.check()
            return self.remote.generate(request, progress, self.messages(request))
        import torch
        from transformers import (
            LogitsProcessorList,
            StoppingCriteria,
            StoppingCriteriaList,
            TextStreamer,
        )

        assert self.model is not None and self.identity is not None
        progress.check()
        p = request.params
        max_tokens = int(p["max_tokens"])
        inputs = {k: v.to(self.device) for k, v in self.build_inputs(request).items()}
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
            processors.append(sampler(temperature, float(p["top_p"]), rng))
        tokenizer = self.tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else \
            tokenizer.eos_token_id
        started = time.perf_counter()
        with torch.inference_mode():
            output = self.model.generate(
                **inputs, max_new_tokens=max_tokens, pad_token_id=pad,
                repetition_penalty=float(p["repetition_penalty"]),
                streamer=_Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True),
                stopping_criteria=StoppingCriteriaList([_Stop()]), do_sample=False,
                logits_processor=processors)
        elapsed = time.perf_counter() - started
        new_ids = output[0, inputs["input_ids"].shape[1]:]
        text = tokenizer.decode(new_ids, skip_special_tokens=True)
        stopped = progress.cancelled
        if stopped and not text:
            raise Cancelled()
        n = int(new_ids.numel())
        finish = "stopped" if stopped else ("length" if n >= max_tokens else "eos")
        progress.update(1.0, text)
        title = title_of(text)
        return Result(
            assets=[Asset("text", "text/plain; charset=utf-8", text.encode("utf-8"))],
            model=self.identity, device=self.device, title=title,
            metadata={"tokens": n, "seconds": round(elapsed, 3),
                      "tokens_per_s": round(n / elapsed, 2) if elapsed > 0 else None,
                      "finish_reason": finish, "stopped": stopped,
                      "prompt_tokens": int(inputs["input_ids"].shape[1])})
