"""Decoding for writers (issue 39, item 3): banned phrases avoided by backtracking on
llama.cpp (checked and said on other engines) and lists of exactly N items by a grammar —
on the real embedded model."""

from __future__ import annotations

import re

import pytest

from creative_studio.core.errors import BadInput
from creative_studio.core.jobs import ModelIdentity, Request
from plugins.text.decoding import banned_list, find_banned, list_grammar, token_index


def test_banned_phrases_are_found_whatever_the_case_and_spacing():
    phrases = banned_list("A testament to\n\n  shivers   down \nshivers down\n")
    assert phrases == ["a testament to", "shivers down"]
    assert find_banned("It was A  Testament\nto her.", phrases) == (7, "a testament to")
    assert find_banned("Shivers down my spine", phrases) == (0, "shivers down")
    assert find_banned("a testamentary gift", ["a testament to"]) is None
    assert find_banned("no match here", phrases) is None
    assert find_banned("shivers down", phrases, start=3) is None
    assert token_index(0, [3, 8, 12]) == 0 and token_index(8, [3, 8, 12]) == 2


def test_the_list_grammar_allows_exactly_n_numbered_lines():
    grammar = list_grammar(3)
    assert grammar.splitlines()[0] == "root ::= item1 item2 item3"
    assert 'item3 ::= "3. "' in grammar


class _Engine:
    name = "openai-compatible"

    def generate(self, request, progress):
        from plugins.text.generator import text_result

        return text_result("It was a testament to grit.", ModelIdentity("m", "server:x/m"),
                           "server", 6, 0.1, "eos")


def test_other_engines_check_banned_phrases_and_transformers_refuses_lists():
    from creative_studio.core.progress import Progress
    from plugins.text.generator import TextGenerator

    generator = TextGenerator.__new__(TextGenerator)
    generator.engine = _Engine()
    request = Request("text", "generate", prompt="Write.",
                      params={"banned": "a testament to\nshivers down", "items": 0})
    result = generator.generate(request, Progress(), {})
    assert result.metadata["banned_found"] == ["a testament to"]
    request.params["items"] = 5
    _Engine.name = "transformers"
    with pytest.raises(BadInput, match="exactly 5 items"):
        generator.generate(request, Progress(), {})


def test_a_servers_json_list_becomes_the_numbered_list():
    from plugins.text.decoding import list_formats, list_from_json

    assert list_from_json('{"items": ["A", " B  c ", "D"]}', 3) == ("1. A\n2. B c\n3. D", "")
    text, problem = list_from_json('{"items": ["A"]}', 3)
    assert text == "1. A" and problem == "the server gave 1 items, not 3"
    assert list_from_json("Sure! 1. A", 3)[0] == "Sure! 1. A"
    # a tiny model fills the schema with junk: the list's shape holds, its emptiness is said
    text, problem = list_from_json('{"items": ["Awesome", "}\n\nYou", " ", "\n"]}', 4)
    assert text == "1. Awesome\n2. } You" and problem == "the server gave 2 items, not 4"
    assert "no list" in list_from_json('{"x": 1}', 3)[1]
    schema = list_formats(4)[0]["json_schema"]["schema"]["properties"]["items"]
    assert schema["minItems"] == schema["maxItems"] == 4


@pytest.mark.model
def test_a_real_llama_cpp_server_gives_exactly_five_titles():
    """llama-cpp-python's server refuses OpenAI's json_schema (500) and takes its own
    json_object with a schema: the fallback gets the list."""
    from creative_studio.core.models import ModelSource
    from creative_studio.core.progress import Progress
    from plugins.text.remote import RemoteText
    from tests.conftest import prepared
    from tests.test_llama_server import ALIAS, start_server

    server = start_server()
    try:
        remote = RemoteText(ModelSource(name=ALIAS, ref=f"server:local/{ALIAS}",
                                        source="server", url=server.url, server="local",
                                        hub_id=ALIAS))
        for seed in (1, 3):  # the server draws from the seed: the same lists each run
            request = prepared(Request("text", "generate", "Give titles for a cozy fantasy "
                                       "novel about a baker witch.", seed=seed,
                                       params={"items": 5, "max_tokens": 200}))
            result = remote.generate(request, Progress())
            lines = result.assets[0].data.decode().split("\n")
            assert len(lines) == 5 and all(re.match(rf"{i + 1}\. \S", line)
                                           for i, line in enumerate(lines)), lines
            assert "items_note" not in result.metadata
        remote.close()
    finally:
        server.stop()


def _panel_message(meta):
    from plugins.text.panel import TextPanel, status_line

    told = TextPanel.finish_message(Request("text", "generate", params={}), meta, "", "x")
    return told, status_line({"tokens": 3, **meta})


def test_the_panel_says_what_was_avoided_and_what_was_found():
    told, line = _panel_message({"banned_found": ["a testament to"]})
    assert told[1] and "“a testament to”" in told[0]
    told, line = _panel_message({"banned_avoided": 2})
    assert told is None and "avoided 2 banned phrases" in line


@pytest.fixture(scope="module")
def engine():
    from plugins.text.llama_engine import LlamaEngine
    from tests.conftest import source_of

    engine = LlamaEngine(source_of("text"))
    yield engine
    engine.close()


def _write(engine, prompt, seed, **params):
    from creative_studio.core.progress import Progress
    from tests.conftest import prepared

    request = prepared(Request("text", "generate", prompt=prompt, seed=seed,
                               params={"max_tokens": 120, **params}))
    result = engine.generate(request, Progress())
    return result.assets[0].data.decode("utf-8"), result.metadata


@pytest.mark.model
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_five_titles_give_five(engine, seed):
    text, _meta = _write(engine, "Give titles for a cozy fantasy novel about a baker witch.",
                         seed, items=5)
    lines = text.strip("\n").split("\n")
    assert len(lines) == 5 and all(re.match(rf"{i + 1}\. \S", line)
                                   for i, line in enumerate(lines)), text


@pytest.mark.model
def test_a_banned_phrase_is_avoided_and_the_text_before_it_kept(engine):
    prompt = "Write a short paragraph about an old lighthouse keeper."
    first, _ = _write(engine, prompt, 5)
    words = first.split()
    assert len(words) > 12, first
    phrase = " ".join(words[8:10]).lower()  # two words the model wrote, mid-paragraph
    at = first.lower().find(phrase)
    second, meta = _write(engine, prompt, 5, banned=phrase)
    assert find_banned(second, [phrase]) is None, (phrase, second)
    assert meta["banned_avoided"] >= 1 and meta["backtracks"] >= 1
    common = next((i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b),
                  min(len(first), len(second)))
    assert common >= at - 15, (phrase, first, second)  # rewritten from the phrase on only
