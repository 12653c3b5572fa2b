"""The Text generator with real models: the embedded SmolLM2 and tiny user models."""

from __future__ import annotations

import shutil

import pytest

from creative_studio.core.errors import BadInput, Cancelled, ModelError
from creative_studio.core.jobs import Request
from creative_studio.core.progress import Progress
from plugins.text import models
from plugins.text.generator import TextGenerator
from tests.conftest import prepared, source_of

pytestmark = pytest.mark.model
EMBEDDED = "embedded:smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smollm(smollm_folder):
    generator = TextGenerator()
    generator.load(source_of("text", EMBEDDED), "cpu", Progress())
    return generator


def run(generator, request, progress=None):
    return generator.generate(prepared(request), progress or Progress(), {})


def text_of(result):
    return result.assets[0].data.decode()


def test_embedded_model_identity(smollm):
    identity = smollm.identity
    assert identity.name == "SmolLM2 135M Instruct"
    assert identity.source == "embedded" and identity.ref == EMBEDDED
    assert len(identity.sha256) == 64


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
    assert text_of(cont).strip()
    assert cont.metadata["prompt_tokens"] < 20  # raw continuation, no chat template
    rew = run(smollm, Request("text", "rewrite", "Make it formal.", {
        "selection": "hey guys the meeting is moved to friday ok", "max_tokens": 30}, seed=3))
    assert text_of(rew).strip()


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


def test_first_use_is_announced(smollm_folder, tmp_path, monkeypatch):
    source = source_of("text", EMBEDDED)
    assert models.is_converted(source)
    monkeypatch.setenv("CREATIVE_STUDIO_CACHE", str(tmp_path / "empty-cache"))
    assert not models.is_converted(source)
    messages = []
    progress = Progress(lambda f, eta, preview: messages.append(progress.message))
    monkeypatch.setattr(models, "load", lambda source, device: (None, None, "0" * 64))
    TextGenerator().load(source, "cpu", progress)
    assert messages[0].startswith("Preparing SmolLM2 135M Instruct (first use")
    assert messages[-1] == ""
