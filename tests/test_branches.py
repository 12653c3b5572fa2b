"""Passages that branch: the model's alternatives at each token (llama.cpp and a real
llama.cpp server), found again in the document by a click; picking one continues from it;
variants of any paragraph flipped through in place, each a History branch."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creative_studio.core.jobs import JobState, Request
from plugins.text.alternatives import Passage, passage_at, token_at, valid
from plugins.text.decoding import paragraph_end

ALTS = [[0, 0.5, [["The", 0.5], ["A", 0.3]]], [3, 0.2, [[" cat", 0.6], [" dog", 0.2]]],
        [7, 0.9, [[" sat", 0.9]]]]


def test_a_click_finds_its_passage_and_token_in_the_document():
    passage = Passage("item1", "The dog sat.", ALTS)
    document = "Intro text.\n\nThe dog sat. After."
    found = passage_at(document, document.index("dog") + 1, [passage])
    assert found is not None and found.token == 1 and found.token_text() == " dog"
    assert found.token_start == document.index(" dog")
    assert passage_at(document, 2, [passage]) is None  # the user's own words
    assert passage_at(document, len(document) - 1, [passage]) is None
    # a second copy of the passage is found where the click is
    twice = "The dog sat. The dog sat."
    assert passage_at(twice, 20, [passage]).start == 13
    assert token_at(ALTS, 0) == 0 and token_at(ALTS, 6) == 1 and token_at(ALTS, 99) == 2


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4), max_leaves=40))
def test_alternatives_read_from_a_project_are_checked(value):
    good = valid(value)
    starts = [entry[0] for entry in good]
    assert starts == sorted(set(starts))
    for entry in good:
        assert all(isinstance(t, str) for t, _ in entry[2])


def test_a_paragraph_ends_at_its_first_line_break_after_text():
    assert paragraph_end("\nOne two.\nThree") == len("\nOne two.")
    assert paragraph_end("\n\n") == -1 and paragraph_end("No end yet") == -1


@pytest.fixture(scope="module")
def engine():
    from plugins.text.llama_engine import LlamaEngine
    from tests.conftest import source_of

    engine = LlamaEngine(source_of("text"))
    yield engine
    engine.close()


@pytest.mark.model
def test_llama_cpp_keeps_each_tokens_alternatives_and_they_add_up(engine):
    from creative_studio.core.progress import Progress
    from tests.conftest import prepared

    request = prepared(Request("text", "generate", "Write two sentences about a cat.",
                               seed=3, params={"max_tokens": 30, "temperature": 0.0,
                                                    "repetition_penalty": 1.0}))
    result = engine.generate(request, Progress())
    text = result.assets[0].data.decode()
    alternatives = result.metadata["alternatives"]
    assert len(alternatives) == result.metadata["tokens"]
    assert [a[0] for a in alternatives] == sorted({a[0] for a in alternatives})
    for start, probability, shown in alternatives:
        assert 0 <= start < len(text) and len(shown) == 5
        assert sum(p for _, p in shown) <= 1.0001
        assert [p for _, p in shown] == sorted((p for _, p in shown), reverse=True)
        # greedy: what was written is the most likely token
        assert shown[0][1] == probability
    assert all(text[a[0]:].startswith(a[2][0][0]) for a in alternatives[1:]
               if a[2][0][0].strip())


@pytest.mark.model
def test_one_paragraph_stops_at_its_end(engine):
    from creative_studio.core.progress import Progress
    from tests.conftest import prepared

    request = prepared(Request("text", "continue", params={
        "context": "The storm broke at midnight.\n", "paragraph": True, "max_tokens": 150},
        seed=2))
    text = engine.generate(request, Progress()).assets[0].data.decode()
    assert text.strip() and "\n" not in text.strip("\n")


@pytest.mark.model
def test_a_server_that_sends_logprobs_gives_alternatives_too():
    from creative_studio.core.progress import Progress
    from plugins.text.remote import RemoteText
    from tests.conftest import prepared
    from tests.test_llama_server import ALIAS, start_server

    server = start_server()
    try:
        from creative_studio.core.models import ModelSource

        source = ModelSource(name=ALIAS, ref=f"server:local/{ALIAS}", source="server",
                             url=server.url, server="local", hub_id=ALIAS)
        remote = RemoteText(source)
        for task, params in (("generate", {}), ("continue", {"context": "Once upon a"})):
            request = prepared(Request("text", task, "Say hello." if task == "generate"
                                       else "", params={"max_tokens": 8, **params}, seed=1))
            result = remote.generate(request, Progress())
            alternatives = result.metadata["alternatives"]
            assert alternatives and all(len(a[2]) >= 1 for a in alternatives), task
        remote.close()
    finally:
        server.stop()


@pytest.fixture
def panel(make_window):
    from tests.helpers import text_panel

    return text_panel(make_window, seed=5, max_tokens=20)


def wait_idle(qtbot, panel):
    qtbot.waitUntil(lambda: panel._stream is None and not panel.jobs, timeout=180_000)


@pytest.mark.gui
@pytest.mark.model
def test_picking_another_word_rewrites_from_it_and_continues(qtbot, panel):
    panel.restore_work({"document": "", "instruction": "Write a sentence about a fox."})
    panel.generate()
    wait_idle(qtbot, panel)
    reply = panel.window_.runner.jobs[-1].result.assets[0].data.decode()
    document = panel.editor.toPlainText()
    assert document == reply
    at = len(reply) // 2
    menu = panel.alternatives_menu(at)
    assert menu is not None and menu.title().startswith("Other words for “")
    found = __import__("plugins.text.alternatives", fromlist=["x"]).passage_at(
        document, at, panel.passages())
    other = next(t for t, _ in found.entry[2] if t != found.token_text())
    item_id = found.passage.item_id
    panel.take_alternative(found, other)
    wait_idle(qtbot, panel)
    job = panel.window_.runner.jobs[-1]
    assert job.state is JobState.DONE and job.request.parents == [item_id]
    written = job.result.assets[0].data.decode()
    assert panel.editor.toPlainText() == reply[:found.token_start] + other + written
    # after a reload the passage is found by its text
    panel.restore_work({"document": panel.editor.toPlainText()})
    assert panel.alternatives_menu(found.token_start + len(other) + 1) is not None


@pytest.mark.gui
@pytest.mark.model
def test_variants_of_a_middle_paragraph_flip_in_place_and_are_branches(qtbot, panel):
    first, last = "The rain kept falling on the town.", "Nobody came out that night."
    middle = "She closed the shutters and lit a candle."
    panel.restore_work({"document": f"{first}\n{middle}\n{last}"})
    panel.alternatives.setValue(3)
    panel.paragraph_variants(len(first) + 3)
    wait_idle(qtbot, panel)
    variants = panel._variants
    assert variants is not None and panel.variants_bar.isVisibleTo(panel)
    texts = variants["texts"]
    assert texts[0] == middle and len(texts) == 4
    shown = panel.editor.toPlainText().split("\n")
    assert shown[0] == first and shown[2] == last and shown[1] == texts[variants["index"]]
    assert all("\n" not in t for t in texts)
    panel.flip_variant(-10)  # out of range: nothing
    assert panel._variants is variants, panel.message.text()
    while panel._variants["index"] > 0:
        panel.flip_variant(-1)
    assert panel.editor.toPlainText() == f"{first}\n{middle}\n{last}"
    panel.flip_variant(1)
    assert panel.editor.toPlainText().split("\n")[1] == texts[1]
    assert "variant 1 of 3" in panel.variant_label.text()
    group = {job.request.params.get("group") for job in panel.window_.runner.jobs[-3:]}
    assert len(group) == 1 and None not in group  # one group of alternatives in the History
    panel.editor.textCursor().insertText("x")  # an edit: the variants let go
    cursor = panel.editor.textCursor()
    cursor.setPosition(len(first) + 2)
    cursor.insertText("EDIT")
    panel.flip_variant(1)
    assert panel._variants is None and not panel.variants_bar.isVisibleTo(panel)
