"""GGUF text on llama.cpp (llama-cpp-python): the file as it is, quantized, no conversion.

- **Chat template** from the GGUF (``tokenizer.chat_template``), rendered by
  llama-cpp-python's sandboxed Jinja; a GGUF without one gets llama.cpp's own format for its
  architecture (Gemma, ChatML, Phi-3…), else plain paragraphs. Which one is recorded.
- **Context**: the model's own, at most 8,192 tokens; every request is fitted into it
  (plugins/text/context.py: the instruction stays, the document keeps the text nearest the
  cursor and says how much was left out).
- **Same seed, same text, cache or not**: prompts are evaluated in 64-token blocks aligned
  to absolute positions, the last prompt token alone, so a prompt meets the same matrix
  shapes whether a cached prefix was reused or not. A second Continue on a long document
  reuses the KV cache up to the last whole block it shares with the previous request.
- **Stop** is checked after every token and between prompt blocks.
- **Threads**: the studio's thread policy (creative_studio/core/cpu.py) decides before each
  generation, from the cores other programs leave free at that moment (measured: beside
  one busy program two threads fall to a third of one thread's speed); Preferences → CPU
  threads overrides it.
"""

from __future__ import annotations

import importlib.util
import logging
import time

from creative_studio.core import cpu
from creative_studio.core.errors import Cancelled, ModelError
from creative_studio.core.jobs import ModelIdentity, Request, Result
from creative_studio.core.models import ModelSource
from creative_studio.core.progress import Progress
from creative_studio.core.provenance import weights_sha256

log = logging.getLogger(__name__)
BLOCK = 64  # prompt tokens per evaluation block (aligned to absolute positions)
MAX_CONTEXT = 8192
MISSING_NOTE = ("llama.cpp (llama-cpp-python) is not installed — run `bash tools/setup.sh "
                "install` to build it (about 5 minutes, once); until then GGUF models run on "
                "the slower transformers engine.")
# GGUFs without a chat template: llama.cpp's own format for their architecture
_ARCH_FORMATS = {"gemma": "format_gemma", "gemma2": "format_gemma", "gemma3": "format_gemma",
                 "qwen2": "format_chatml", "qwen3": "format_chatml", "phi3": "format_chatml"}


def available() -> bool:
    """Whether llama-cpp-python is installed (looked up without importing it)."""
    return importlib.util.find_spec("llama_cpp") is not None


class LlamaEngine:
    """One GGUF opened by llama.cpp, with its KV cache kept between jobs."""

    name = "llama.cpp"

    def __init__(self, source: ModelSource, threads: int | None = None,
                 max_context: int = MAX_CONTEXT) -> None:
        import llama_cpp
        from llama_cpp import Llama

        path = source.path
        assert path is not None
        self.fixed_threads = threads  # None: the policy decides at each generation
        self.threads = threads or cpu.POLICY.threads()
        try:
            from llama_cpp._utils import suppress_stdout_stderr

            with suppress_stdout_stderr(disable=False):  # a harmless context warning
                probe = Llama(str(path), vocab_only=True, verbose=False)
                trained = int(probe._model.n_ctx_train())
                probe.close()
            self.llm = Llama(str(path), n_ctx=min(trained or max_context, max_context),
                             n_threads=self.threads, n_threads_batch=self.threads,
                             n_batch=512, seed=0, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            log.warning("llama.cpp could not load %s: %s", path, exc)
            raise ModelError(f"{path.name} is not a valid GGUF language model: llama.cpp "
                             "could not load it (details in the log).") from exc
        self.version = getattr(llama_cpp, "__version__", "")
        self.n_ctx = int(self.llm.n_ctx())
        self.identity = ModelIdentity(source.name, source.ref, weights_sha256(path),
                                      source.source)
        self.metadata = dict(self.llm.metadata)
        self.architecture = self.metadata.get("general.architecture", "")
        self._formatter, self.template_source = self._chat_formatter()
        # cached tokens that were evaluated as whole aligned blocks: only those are reused
        # (a partial block, the prompt's last token and generated tokens were evaluated in
        # other shapes, which round differently)
        self._whole = 0

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            llm.close()

    # -- prompts -------------------------------------------------------------------
    def _chat_formatter(self):
        from llama_cpp import llama_chat_format as chat

        template = self.metadata.get("tokenizer.chat_template")
        if template:
            model = self.llm._model
            eos, bos = self.llm.token_eos(), self.llm.token_bos()
            formatter = chat.Jinja2ChatFormatter(
                template, model.token_get_text(eos) if eos != -1 else "",
                model.token_get_text(bos) if bos != -1 else "", add_generation_prompt=True)
            return formatter, "the model's own chat template"
        name = _ARCH_FORMATS.get(self.architecture)
        if name and hasattr(chat, name):
            return getattr(chat, name), f"llama.cpp's {name.removeprefix('format_')} format"
        return None, "plain paragraphs (the model has no chat template)"

    def prompt(self, request: Request) -> tuple[list[int], list[str]]:
        """The prompt's tokens and the stop strings of its chat format."""
        from .generator import TextGenerator

        llm = self.llm
        if request.task == "continue":
            from .story import continuation

            return llm.tokenize(continuation(request).encode("utf-8"),
                                add_bos=True, special=False), []
        messages = TextGenerator.messages(request)
        if self._formatter is None:
            text = "\n\n".join(m["content"] for m in messages) + "\n\n"
            return llm.tokenize(text.encode("utf-8"), add_bos=True, special=False), []
        formatted = self._formatter(messages=messages)
        stop = formatted.stop or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        tokens = llm.tokenize(formatted.prompt.encode("utf-8"),
                              add_bos=not formatted.added_special, special=True)
        return tokens, stop

    def count(self, text: str) -> int:
        """The tokens of a piece of text (no BOS, special tokens as text)."""
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)) \
            if text else 0

    def _alternatives(self, token: int, n_vocab: int, before: list[int],
                      at: int) -> list:
        """[at, the token's probability, the ALTERNATIVES most likely tokens as [text,
        probability]]: the model's own distribution at this point (the logits before
        temperature, top-k/p and penalties), read from llama.cpp's last logits."""
        import numpy as np
        from llama_cpp import llama_cpp as capi

        from .alternatives import ALTERNATIVES

        logits = np.ctypeslib.as_array(capi.llama_get_logits_ith(self.llm._ctx.ctx, -1),
                                       shape=(n_vocab,))
        peak = float(logits.max())
        log_total = peak + float(np.log(np.exp(logits - peak).sum()))
        top = np.argpartition(logits, -ALTERNATIVES)[-ALTERNATIVES:]
        top = top[np.argsort(-logits[top])]
        shown = [[self.llm.detokenize([int(t)], prev_tokens=before).decode("utf-8", "replace"),
                  round(float(np.exp(logits[t] - log_total)), 4)] for t in top]
        return [at, round(float(np.exp(logits[token] - log_total)), 4), shown]

    def _set_threads(self, threads: int) -> None:
        """This job's threads, for prompt and generation alike (no reload)."""
        if threads != self.threads:
            from llama_cpp import llama_cpp as capi

            capi.llama_set_n_threads(self.llm._ctx.ctx, threads, threads)
            self.llm.n_threads = self.llm.n_threads_batch = threads
            self.llm.context_params.n_threads = self.llm.context_params.n_threads_batch = threads
            self.threads = threads

    # -- evaluation -------------------------------------------------------------------
    def _evaluate(self, tokens: list[int], progress: Progress) -> int:
        """Bring the KV cache to ``tokens``; returns how many were reused from the cache."""
        llm = self.llm
        cached = list(llm.input_ids[:llm.n_tokens])
        common = 0
        for a, b in zip(cached, tokens, strict=False):
            if a != b:
                break
            common += 1
        end = len(tokens) - 1
        reuse = min(common, self._whole, end) // BLOCK * BLOCK
        llm.n_tokens = reuse
        llm._ctx.kv_cache_seq_rm(-1, reuse, -1)
        self._whole = reuse
        for start in range(reuse, end, BLOCK):
            if progress.cancelled:
                raise Cancelled()
            llm.eval(tokens[start:min(start + BLOCK, end)])
            if start + BLOCK <= end:
                self._whole = start + BLOCK
        llm.eval(tokens[end:])
        return reuse

    def generate(self, request: Request, progress: Progress) -> Result:
        from llama_cpp import llama_cpp as capi

        from .alternatives import MAX_TOKENS as MAX_ALTERNATIVE_TOKENS
        from .context import fit
        from .decoding import (
            MAX_BACKTRACKS,
            banned_list,
            find_banned,
            list_grammar,
            paragraph_end,
            token_index,
        )
        from .generator import text_result
        from .story import counted

        self._set_threads(self.fixed_threads or cpu.POLICY.threads())
        fitted = fit(request, self.n_ctx, lambda r: len(self.prompt(r)[0]))
        p = fitted.request.params
        tokens, stops = self.prompt(fitted.request)
        max_tokens = fitted.max_tokens
        llm = self.llm
        started = time.perf_counter()
        reused = self._evaluate(tokens, progress)
        first_token = None
        temperature = float(p["temperature"])
        llm.set_seed(int(request.seed))
        phrases = banned_list(p.get("banned", ""))
        # how far back a phrase ending in the newest token may begin (runs of spaces too)
        reach = max([200] + [2 * len(phrase) for phrase in phrases])
        items = int(p.get("items", 0) or 0) if request.task == "generate" else 0
        one_paragraph = bool(p.get("paragraph")) and request.task == "continue"
        grammar = None
        if items:
            from llama_cpp import LlamaGrammar

            grammar = LlamaGrammar.from_string(list_grammar(items), verbose=False)
        generated: list[int] = []
        ends: list[int] = []  # the text's length (characters) after each generated token
        ban_at: dict[int, set[int]] = {}  # position → tokens a banned phrase began with
        backtracks = 0
        avoided: list[str] = []

        def new_sampler():
            sampler = llm._init_sampler(
                top_k=int(p.get("top_k", 0)), top_p=float(p["top_p"]),
                min_p=float(p.get("min_p", 0.0)), temp=temperature,
                repeat_penalty=float(p["repetition_penalty"]), grammar=grammar)
            if grammar is None:  # the penalty sees the prompt too (a grammar would refuse it)
                for token in tokens[-llm.last_n_tokens_size:]:
                    sampler.accept(token)
            for token in generated:
                sampler.accept(token)
            return sampler

        sampler = new_sampler()
        vocab = llm._model.vocab
        n_vocab = llm.n_vocab()
        # per generated token: [its first character in the text, its probability, the
        # model's top ALTERNATIVES as [text, probability]] (the token alternatives view)
        alternatives: list[list] = []
        out = bytearray()
        text = ""
        n = 0
        finish = "length"
        while n < max_tokens:
            if progress.cancelled:
                finish = "stopped"
                break
            banned_here = ban_at.get(len(generated))
            if banned_here:
                logits = capi.llama_get_logits_ith(llm._ctx.ctx, -1)
                for token in banned_here:
                    logits[token] = float("-inf")
            token = sampler.sample(llm._ctx, -1)
            if capi.llama_vocab_is_eog(vocab, token):
                finish = "eos"
                break
            if len(alternatives) < MAX_ALTERNATIVE_TOKENS:
                alternatives.append(self._alternatives(token, n_vocab, tokens + generated,
                                                       len(text)))
            out += llm.detokenize([token], prev_tokens=tokens + generated)
            generated.append(token)
            n += 1
            if first_token is None:
                first_token = time.perf_counter() - started
            text = out.decode("utf-8", errors="ignore")
            ends.append(len(text))
            found = None
            if phrases and backtracks < MAX_BACKTRACKS:  # a phrase ending in this token
                before = ends[-2] if len(ends) > 1 else 0
                found = find_banned(text, phrases, max(0, before - reach))
            if found is not None:  # back to the token the phrase began with; not it again
                at = token_index(found[0], ends)
                ban_at.setdefault(at, set()).add(generated[at])
                for later in [k for k in ban_at if k > at]:
                    del ban_at[later]
                backtracks += 1
                avoided.append(found[1])
                del generated[at:], ends[at:], alternatives[at:]
                text = text[:ends[-1]] if ends else ""
                out = bytearray(text.encode("utf-8"))
                keep = len(tokens) + at - 1  # the KV cache up to the token before it
                llm.n_tokens = keep
                llm._ctx.kv_cache_seq_rm(-1, keep, -1)
                llm.eval([generated[-1] if generated else tokens[-1]])
                sampler = new_sampler()
                continue
            cut = min((text.find(s) for s in stops if s in text), default=-1)
            if one_paragraph and paragraph_end(text) >= 0:
                cut = paragraph_end(text) if cut < 0 else min(cut, paragraph_end(text))
            if cut >= 0:
                text = text[:cut]
                finish = "eos"
                break
            progress.update(min(1.0, n / max_tokens), text)
            if llm.n_tokens >= self.n_ctx:
                break
            llm.eval([token])
        elapsed = time.perf_counter() - started
        if finish != "eos":
            text = out.decode("utf-8", errors="replace")
        if finish == "stopped" and not text:
            raise Cancelled()
        alternatives = [a for a in alternatives if a[0] < len(text)]
        progress.update(1.0, text)
        return text_result(
            text, self.identity, "cpu", n, elapsed, finish,
            prompt_tokens=len(tokens), cached_tokens=reused, first_token_s=first_token,
            engine=self.name, engine_version=self.version, threads=self.threads,
            context_tokens=self.n_ctx, context_notes=fitted.notes,
            words_left_out=fitted.words_left_out, chat_template=self.template_source,
            architecture=self.architecture, banned_avoided=len(avoided),
            alternatives=alternatives,
            prompt_parts=counted(fitted.request, self.count, len(tokens),
                                 fitted.words_left_out),
            banned_phrases=sorted(set(avoided)), backtracks=backtracks,
            **({"banned_note": f"gave up avoiding banned phrases after {MAX_BACKTRACKS} "
                               "tries"} if backtracks >= MAX_BACKTRACKS else {}))
