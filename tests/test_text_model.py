"""The Text generator with real models: the embedded SmolLM2 on both local engines
(llama.cpp on the GGUF as it is, transformers on the same weights as a folder), a second
GGUF architecture (Gemma 3), and tiny user models."""

from __future__ import annotations

import shutil

import pytest

from creative_studio.core.errors import BadInput, Cancelled, ModelError
from creative_studio.core.jobs import Request
from creative_studio.core.progress import Progress
from plugins.text import llama_engine, models
from plugins.text.context import fit
from plugins.text.generator import TextGenerator
from tests.conftest import gemma_gguf, prepared, source_of

pytestmark = pytest.mark.model
EMBEDDED = "embedded:smollm2-135m-instruct"
needs_llama = pytest.mark.skipif(not llama_engine.available(),
                                 reason="llama-cpp-python is not built (tools/setup.sh)")


@pytest.fixture(scope="module", params=["llama.cpp", "transformers"])
def smollm(request, smollm_folder):
    """The embedded model on each engine: the GGUF on llama.cpp, its weights as a
    transformers folder."""
    if request.param == "llama.cpp" and not llama_engine.available():
        pytest.skip("llama-cpp-python is not built (tools/setup.sh)")
    generator = TextGenerator()
    ref = EMBEDDED if request.param == "llama.cpp" else str(smollm_folder)
    generator.load(source_of("text", ref), "cpu", Progress())
    assert generator.engine.name == request.param
    yield generator
    generator.unload()


def run(generator, request, progress=None):
    return generator.generate(prepared(request), progress or Progress(), {})


def text_of(result):
    return result.assets[0].data.decode()


@needs_llama
def test_embedded_model_identity_and_engine():
    generator = TextGenerator()
    generator.load(source_of("text", EMBEDDED), "cpu", Progress())
    identity = generator.identity
    assert identity.name == "SmolLM2 135M Instruct"
    assert identity.source == "embedded" and identity.ref == EMBEDDED
    assert identity.sha256 == models.weights_sha256(source_of("text", EMBEDDED).path)
    res = run(generator, Request("text", "generate", "Say hello.", {"max_tokens": 8}, seed=1))
    meta = res.metadata
    assert meta["engine"] == "llama.cpp" and meta["context_tokens"] == 8192
    assert meta["chat_template"] == "the model's own chat template"
    assert meta["architecture"] == "llama" and meta["threads"] >= 1
    generator.unload()


def test_seeded_generation_is_reproducible_and_seed_matters(smollm):
    req = Request("text", "generate", "Write one sentence about the moon.",
                  {"max_tokens": 24, "temperature": 1.0}, seed=11)
    first, again = text_of(run(smollm, req)), text_of(run(smollm, req))
    other = text_of(run(smollm, Request(**{**req.__dict__, "seed": 12})))
    assert first and first == again
    assert other != first


def test_streaming_previews_grow_to_the_final_text(smollm):
    previews = []
    progress = Progress(lambda f, eta, preview: previews.append((f, preview)))
    res = run(smollm, Request("text", "generate", "Name three colours.", {"max_tokens": 20},
                              seed=1), progress)
    texts = [p for _, p in previews if p]
    assert len(texts) >= 3
    assert all(texts[i + 1].startswith(texts[i]) for i in range(len(texts) - 1))
    assert texts[-1] == text_of(res)
    assert res.metadata["tokens"] <= 20


def test_continue_and_rewrite(smollm):
    cont = run(smollm, Request("text", "continue", "", {
        "context": "Once upon a time, in a small village by the sea,", "max_tokens": 15},
        seed=3))
    assert text_of(cont).strip() and 0 < cont.metadata["tokens"] <= 15
    assert "Once upon a time" not in text_of(cont)  # the new words only, not the context
    assert cont.metadata["prompt_tokens"] < 20  # raw continuation, no chat template
    rew = run(smollm, Request("text", "rewrite", "Make it formal.", {
        "selection": "hey guys the meeting is moved to friday ok", "max_tokens": 30}, seed=3))
    assert text_of(rew).strip() and 0 < rew.metadata["tokens"] <= 30
    assert rew.metadata["prompt_tokens"] > 20  # the instruction and the selection, templated
    assert text_of(rew).strip() != "hey guys the meeting is moved to friday ok"


def test_stop_keeps_partial_text(smollm):
    progress = Progress()
    seen = []

    def listener(fraction, eta, preview):
        seen.append(preview)
        if len(seen) == 4:
            progress.cancel()

    progress._listener = listener
    res = run(smollm, Request("text", "generate", "Write a long story about a dragon.",
                              {"max_tokens": 200}, seed=5), progress)
    assert res.metadata["stopped"] and res.metadata["finish_reason"] == "stopped"
    assert 0 < res.metadata["tokens"] < 20


def test_cancel_before_any_token_raises(smollm):
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        run(smollm, Request("text", "generate", "hi", {"max_tokens": 5}, seed=1), progress)


@pytest.mark.parametrize("request_, message", [
    (Request("text", "generate", "   "), "instruction"),
    (Request("text", "continue", "", {"context": ""}), "Nothing to continue"),
    (Request("text", "rewrite", "x", {"selection": ""}), "Select"),
    (Request("text", "generate", "x", {"max_tokens": 0}), "Max tokens must be between 1"),
    (Request("text", "generate", "x", {"top_p": 0}), "Top-p must be between 0.05 and 1"),
    (Request("text", "generate", "x", {"temperature": "hot"}), "Temperature must be a number"),
    (Request("text", "dance", "x"), "Text has no task 'dance'"),
])
def test_bad_requests(request_, message):
    with pytest.raises(BadInput, match=message):
        prepared(request_)


def test_user_model_folder_loads_and_generates(tiny_llama):
    generator = TextGenerator()
    generator.load(source_of("text", str(tiny_llama)), "cpu", Progress())
    assert generator.identity.source == "local" and len(generator.identity.sha256) == 64
    res = run(generator, Request("text", "generate", "hello", {"max_tokens": 5}, seed=0))
    assert res.metadata["tokens"] >= 1


def test_hub_id_resolves_from_the_local_hub_cache(tiny_llama, hub_cache):
    snapshot = hub_cache / "models--tiny-org--tiny-llama" / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_llama, snapshot, dirs_exist_ok=True)
    (snapshot.parents[1] / "refs").mkdir(exist_ok=True)
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    generator = TextGenerator()
    generator.load(source_of("text", "tiny-org/tiny-llama"), "cpu", Progress())
    assert generator.identity.source == "hub"
    assert generator.identity.sha256 == models.weights_sha256(snapshot)
    with pytest.raises(ModelError, match="downloads are off"):
        TextGenerator().load(source_of("text", "hub:nobody/not-cached"), "cpu", Progress())


def test_missing_and_corrupt_models_give_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="Model not found"):
        source_of("text", str(tmp_path / "nothing-here"))
    (tmp_path / "folder").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        models.kind_of(source_of("text", str(tmp_path / "folder")))
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 100)
    with pytest.raises(ModelError, match="not a valid GGUF"):
        TextGenerator().load(source_of("text", str(bad)), "cpu", Progress())
    txt = tmp_path / "notes.txt"
    txt.write_text("hi")
    with pytest.raises(ModelError, match="not a GGUF"):
        TextGenerator().load(source_of("text", str(txt)), "cpu", Progress())
    with pytest.raises(ModelError, match="Text has no embedded model 'gpt-17'"):
        source_of("text", "embedded:gpt-17")


def test_without_llama_cpp_a_gguf_is_converted_and_the_slower_engine_is_said(
        smollm_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(llama_engine, "available", lambda: False)
    source = source_of("text", EMBEDDED)
    assert models.is_converted(source)
    generator = TextGenerator()
    generator.load(source, "cpu", Progress())
    assert generator.engine.name == "transformers"
    res = run(generator, Request("text", "generate", "Hi.", {"max_tokens": 4}, seed=1))
    assert "llama.cpp (llama-cpp-python) is not installed" in res.metadata["engine_note"]
    assert "tools/setup.sh" in res.metadata["engine_note"]
    # the first conversion is announced
    monkeypatch.setenv("CREATIVE_STUDIO_CACHE", str(tmp_path / "empty-cache"))
    assert not models.is_converted(source)
    messages = []
    progress = Progress(lambda f, eta, preview: messages.append(progress.message))
    monkeypatch.setattr(models, "load", lambda source, device: (None, None, "0" * 64))
    with pytest.raises(AttributeError):  # the stand-in model above has no config
        TextGenerator().load(source, "cpu", progress)
    assert messages[0].startswith("Preparing SmolLM2 135M Instruct (first use")
    assert messages[-1] == ""


LONG = " ".join(f"Day {i}: the river ran past the old mill, and the children counted the "
                f"boats until the bell rang." for i in range(30))


@needs_llama
def test_a_long_document_continued_twice_reuses_the_kv_cache():
    """A long document (700+ tokens, many cache blocks): the second Continue (two words
    more) evaluates only what follows the last whole cached block, and writes what a fresh
    engine writes. (How much sooner its first token comes is bench/, not a test.)"""
    engine = llama_engine.LlamaEngine(source_of("text", EMBEDDED))
    first = engine.generate(prepared(Request("text", "continue", "", {
        "context": LONG, "max_tokens": 12}, seed=4)), Progress())
    assert first.metadata["prompt_tokens"] > 700 and first.metadata["cached_tokens"] == 0
    again = prepared(Request("text", "continue", "", {"context": LONG + " And then",
                                                       "max_tokens": 12}, seed=4))
    second = engine.generate(again, Progress())
    meta = second.metadata
    assert meta["cached_tokens"] >= meta["prompt_tokens"] - llama_engine.BLOCK - 4
    print(f"time to first token: {first.metadata['first_token_s']:.2f} s, again "
          f"{meta['first_token_s']:.2f} s ({meta['cached_tokens']} of "
          f"{meta['prompt_tokens']} tokens from the cache)")
    fresh = llama_engine.LlamaEngine(source_of("text", EMBEDDED))
    alone = fresh.generate(again, Progress())
    assert alone.metadata["cached_tokens"] == 0
    assert text_of(alone) == text_of(second)  # the cache changes the speed, not the text
    engine.close()
    fresh.close()


@needs_llama
def test_the_thread_policy_reaches_llama_cpp_at_each_generation(monkeypatch):
    """No reload when the policy changes its mind between two jobs: the next generation
    runs on the new count, says it in its recipe, and writes the same text (llama.cpp
    splits rows among threads; the sums do not change)."""
    from creative_studio.core import cpu

    engine = llama_engine.LlamaEngine(source_of("text", EMBEDDED))
    request = prepared(Request("text", "generate", "Say hello.", {"max_tokens": 10}, seed=2))
    texts = []
    for threads in (1, 2, 1):
        monkeypatch.setattr(cpu.POLICY, "current", cpu.Decision(threads, "test", "measured"))
        result = engine.generate(request, Progress())
        assert result.metadata["threads"] == threads
        assert engine.llm.n_threads == engine.llm.context_params.n_threads_batch == threads
        texts.append(text_of(result))
    assert texts[0] == texts[1] == texts[2]
    fixed = llama_engine.LlamaEngine(source_of("text", EMBEDDED), threads=1)  # bench's bare
    assert fixed.generate(request, Progress()).metadata["threads"] == 1
    engine.close()
    fixed.close()


def _count_words(request):
    """A stand-in tokenizer for the fitting rules: one token per word, plus 10 for the
    template."""
    p = request.params
    return 10 + sum(len(str(v).split()) for v in (request.prompt, p.get("system", ""),
                                                  p.get("context", ""), p.get("selection", "")))


def test_fitting_keeps_the_instruction_and_the_text_nearest_the_cursor():
    document = " ".join(f"w{i}" for i in range(500))
    request = prepared(Request("text", "generate", "Summarise it.", {
        "context": document, "max_tokens": 100, "system": "Be brief."}, seed=1))
    fitted = fit(request, 256, _count_words)
    kept = fitted.request.params["context"].split()
    assert kept[-1] == "w499" and kept[0] == f"w{fitted.words_left_out}"
    assert fitted.request.prompt == "Summarise it." and fitted.request.params["system"]
    assert fitted.prompt_tokens + fitted.max_tokens <= 256
    assert fitted.prompt_tokens + fitted.max_tokens > 254  # no more left out than needed
    assert any("were left out" in note for note in fitted.notes)
    assert fit(request, 2000, _count_words).words_left_out == 0  # fits: nothing cut
    big = prepared(Request("text", "generate", "Hi.", {"max_tokens": 5000}, seed=1))
    lowered = fit(big, 256, _count_words)
    assert lowered.max_tokens == 256 - _count_words(big)
    assert "Max tokens lowered" in lowered.notes[0]
    too_long = prepared(Request("text", "rewrite", "Shorter.", {
        "selection": document}, seed=1))
    with pytest.raises(BadInput, match="too long to rewrite"):
        fit(too_long, 256, _count_words)
    with pytest.raises(BadInput, match="instruction and system prompt"):
        fit(prepared(Request("text", "generate", document, seed=1)), 256, _count_words)


@needs_llama
def test_the_context_rules_on_a_real_engine_with_a_small_context():
    engine = llama_engine.LlamaEngine(source_of("text", EMBEDDED), max_context=256)
    assert engine.n_ctx == 256
    res = engine.generate(prepared(Request("text", "continue", "", {
        "context": LONG, "max_tokens": 20}, seed=2)), Progress())
    meta = res.metadata
    assert meta["words_left_out"] > 300
    assert meta["prompt_tokens"] + meta["tokens"] <= 256
    assert any("were left out" in n for n in meta["context_notes"])
    with pytest.raises(BadInput, match="too long to rewrite"):
        engine.generate(prepared(Request("text", "rewrite", "Shorter.", {
            "selection": LONG}, seed=1)), Progress())
    engine.close()


@pytest.mark.skipif(gemma_gguf() is None, reason="the Gemma 3 test GGUF is not installed")
@needs_llama
def test_a_gguf_of_another_architecture_opens_as_it_is(tmp_path):
    """Gemma 3 270M Q4_K_M (installed by the test set-up only: Gemma's terms keep it out of
    the studio): opened without conversion, its own chat template, seeds reproducible."""
    path = gemma_gguf()
    generator = TextGenerator()
    generator.load(source_of("text", str(path)), "cpu", Progress())
    assert generator.engine.name == "llama.cpp"
    req = Request("text", "generate", "Name a fruit.", {"max_tokens": 12,
                                                        "temperature": 0.9}, seed=7)
    first, again = run(generator, req), run(generator, req)
    assert first.metadata["architecture"] == "gemma3"
    assert text_of(first).strip() and text_of(first) == text_of(again)
    assert first.metadata["chat_template"] in ("the model's own chat template",
                                               "llama.cpp's gemma format")
    assert not (models._gguf_cache(generator.identity.sha256)).exists()  # no conversion
    generator.unload()
