"""Fitting a text request into the model's context (plugins/text/context.py): its rules one
by one with exact figures, and a property over any document, instruction and context size.
A tokenizer stand-in counts one token per word plus 10 for the template."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creative_studio.core.errors import BadInput
from creative_studio.core.jobs import Request
from plugins.text.context import MIN_REPLY, _tail_words, fit
from tests.helpers import Outcomes, examples

TEMPLATE = 10


def count(request: Request) -> int:
    p = request.params
    return TEMPLATE + sum(len(str(v).split()) for v in (
        request.prompt, p.get("system", ""), p.get("context", ""), p.get("selection", "")))


def words(n: int, start: int = 0) -> str:
    return " ".join(f"w{i}" for i in range(start, start + n))


def request(task: str = "generate", prompt: str = "Go on.", **params) -> Request:
    return Request("text", task, prompt, params, seed=1)


def test_a_request_that_fits_is_a_copy_left_as_it_is():
    original = request(context=words(50), max_tokens=100, system="Be brief.")
    fitted = fit(original, 200, count)
    assert fitted.request is not original and fitted.request.params is not original.params
    assert fitted.request.params["context"] == words(50)
    assert (fitted.prompt_tokens, fitted.max_tokens, fitted.words_left_out) == (64, 100, 0)
    assert fitted.notes == []
    assert fitted.request.params["max_tokens"] == 100


def test_max_tokens_is_lowered_to_what_the_context_leaves_and_said():
    fitted = fit(request(prompt="Hi.", max_tokens=500), 300, count)
    assert fitted.max_tokens == fitted.request.params["max_tokens"] == 300 - 11
    assert fitted.notes == ["Max tokens lowered to 289 (the model's context is 300 tokens)"]
    exact = fit(request(prompt="Hi.", max_tokens=289), 300, count)
    assert exact.max_tokens == 289 and exact.notes == []
    blank = fit(request(prompt="Hi.", context="   \n", max_tokens=500), 300, count)
    assert blank.max_tokens == blank.request.params["max_tokens"] == 289  # a blank document
    default = fit(request(prompt="Hi."), 1000, count)  # no max_tokens: 200
    assert default.max_tokens == 200


def test_the_instruction_that_leaves_too_little_room_is_refused():
    # fixed part 10 + 5 words; a reply needs MIN_REPLY more
    ok = fit(request(prompt=words(5), max_tokens=1), 15 + MIN_REPLY, count)
    assert ok.max_tokens == 1
    with pytest.raises(BadInput, match=r"^The instruction and system prompt take 16 tokens; "
                                       r"this model reads at most 31\. Shorten them\.$"):
        fit(request(prompt=words(5), system="x"), 15 + MIN_REPLY, count)
    # the document does not count towards the fixed part: it can be cut instead
    fitted = fit(request(prompt=words(5), context=words(400)), 15 + MIN_REPLY + 20, count)
    assert fitted.words_left_out > 0
    tight = fit(request(prompt=words(5), context=words(400), max_tokens=1), 15 + MIN_REPLY,
                count)  # the fixed part (15) and a minimal reply fit exactly
    assert tight.words_left_out == 400 - 15 and tight.max_tokens == 1


def test_a_selection_to_rewrite_is_never_cut():
    with pytest.raises(BadInput, match=r"^The selection is too long to rewrite with this "
                                       r"model: it takes 1,011 tokens and the model reads at "
                                       r"most 1,000\. Select a shorter passage\.$"):
        fit(request("rewrite", prompt="", selection=words(1001)), 1000, count)
    fitted = fit(request("rewrite", prompt="", selection=words(900), max_tokens=900), 1000,
                 count)
    assert fitted.request.params["selection"] == words(900)
    assert fitted.max_tokens == 90 and fitted.words_left_out == 0


def test_the_document_keeps_the_words_nearest_the_cursor_and_no_fewer_than_fit():
    fitted = fit(request(context=words(500), max_tokens=100), 300, count)
    # 10 + 2 (instruction) + kept + 100 ≤ 300 → 188 words kept, 312 left out
    assert fitted.words_left_out == 312
    assert fitted.request.params["context"] == words(188, start=312)
    assert fitted.prompt_tokens == 200 and fitted.max_tokens == 100
    assert fitted.notes == ["the first 312 words of the document were left out (the model "
                            "reads 300 tokens)"]
    one = fit(request(context=words(189), max_tokens=100), 300, count)
    assert one.words_left_out == 1 and one.notes == [
        "the first 1 word of the document were left out (the model reads 300 tokens)"]


def test_a_continuation_keeps_at_least_half_the_context_for_its_text():
    fitted = fit(request("continue", prompt="", context=words(1000), max_tokens=900), 1000,
                 count)
    assert fitted.max_tokens == 500
    assert fitted.notes[0] == "Max tokens lowered to 500 to keep the text before the cursor in view"
    assert fitted.prompt_tokens == 500 and fitted.words_left_out == 510
    # where the lowered reply makes room for the whole text, nothing is left out
    whole = fit(request("continue", prompt="", context=words(50), max_tokens=950), 1000, count)
    assert whole.max_tokens == whole.request.params["max_tokens"] == 500
    assert whole.words_left_out == 0
    assert whole.request.params["context"] == words(50) and whole.prompt_tokens == 60
    assert len(whole.notes) == 1
    half = fit(request("continue", prompt="", context=words(1000), max_tokens=500), 1000,
               count)  # exactly half: not lowered, nothing said of it
    assert half.max_tokens == 500 and len(half.notes) == 1 and "left out" in half.notes[0]
    # a Generate may use more than half for its reply
    plain = fit(request("generate", prompt="", context=words(1000), max_tokens=900), 1000,
                count)
    assert plain.max_tokens == 900 and plain.prompt_tokens == 100


def test_the_start_of_the_kept_text_is_cut_at_a_word_with_its_spacing():
    text = "one  two\nthree\tfour"
    assert _tail_words(text, 0) == text
    assert _tail_words("  indented", 0) == "  indented"  # nothing skipped: kept as it was
    assert _tail_words(text, -1) == text
    assert _tail_words(text, 1) == "two\nthree\tfour"
    assert _tail_words(text, 3) == "four"
    assert _tail_words(text, 4) == "" and _tail_words(text, 9) == ""


def test_any_request_fits_or_is_refused_and_keeps_the_end_of_its_document():
    seen = Outcomes()

    @settings(max_examples=examples(300, least=120), deadline=None, derandomize=True)
    @given(task=st.sampled_from(["generate", "continue", "rewrite"]),
           prompt=st.integers(0, 40), document=st.integers(0, 600),
           selection=st.integers(0, 60), wanted=st.integers(1, 800),
           n_ctx=st.integers(16, 700))
    def check(task, prompt, document, selection, wanted, n_ctx):
        original = request(task, prompt=words(prompt, start=9000), max_tokens=wanted,
                           **({"selection": words(selection, 5000)} if task == "rewrite"
                              else {"context": words(document)}))
        before = original.to_dict()
        try:
            fitted = fit(original, n_ctx, count)
        except BadInput:
            seen["refused"] += 1
            assert original.to_dict() == before
            return
        assert original.to_dict() == before  # the user's request is never changed
        out = fitted.request
        assert out.prompt == original.prompt and out.task == task
        assert out.params.get("selection") == original.params.get("selection")
        assert fitted.prompt_tokens == count(out)
        assert fitted.prompt_tokens + fitted.max_tokens <= n_ctx
        assert fitted.max_tokens == out.params["max_tokens"] <= wanted
        assert fitted.max_tokens >= 1
        kept = out.params.get("context")
        if task == "rewrite" or fitted.words_left_out == 0:
            assert kept == original.params.get("context")
            seen["kept whole"] += 1
        else:
            assert kept == words(document - fitted.words_left_out, fitted.words_left_out)
            longer = out.params | {"context": words(document - fitted.words_left_out + 1,
                                                   fitted.words_left_out - 1)}
            assert count(Request("text", task, out.prompt, longer)) + fitted.max_tokens \
                > n_ctx  # no more was left out than needed
            assert any("left out" in note for note in fitted.notes)
            seen["cut"] += 1
        seen["lowered"] += fitted.max_tokens < wanted

    check()
    seen.require("refused", "kept whole", "cut", "lowered", at_least=5)


def test_the_separator_before_a_reply():
    from plugins.text.panel import separator

    assert separator("Here is what I need help with!", "") == "\n\n"
    assert separator("A line.\n", "") == "\n"
    assert separator("A paragraph.\n\n", "") == ""
    assert separator("", "") == "" and separator("  \n", "text") == ""
    assert separator("The lighthouse stood alone.", "\nIts keeper…") == "\n\n"
    assert separator("The lighthouse", " stood alone.") == " "
    assert separator("The lighthouse ", "stood alone.") == ""


@pytest.mark.parametrize(("original", "rewritten", "problem"), [
    ("The cat sat on the mat.",
     "In this context, the sentence is more vivid because it uses a metaphor.", "commentary"),
    ("The cat sat on the mat.", "Here is a more vivid version: the cat sprawled.",
     "commentary"),
    ("The cat sat on the mat.", "The sentence now uses stronger verbs.", "commentary"),
    ("The cat sat on the mat.", "the cat sat on the mat", "unchanged"),
    ("The cat sat on the mat.", "The tabby sprawled across the faded mat.", ""),
    ("The sentence was long.", "The sentence ran on and on.", ""),
])
def test_a_rewrite_that_is_no_rewrite_is_told_apart(original, rewritten, problem):
    from plugins.text.generator import rewrite_problem

    assert rewrite_problem(original, rewritten) == problem


def test_nothing_written_is_no_result():
    from creative_studio.core.errors import Cancelled, StudioError
    from creative_studio.core.jobs import ModelIdentity
    from plugins.text.generator import EMPTY, text_result

    identity = ModelIdentity(name="m", ref="embedded:m", sha256="0" * 64)
    with pytest.raises(StudioError, match="wrote nothing"):
        text_result(" \n", identity, "cpu", 0, 0.1, "eos")
    with pytest.raises(Cancelled):
        text_result("", identity, "cpu", 0, 0.1, "stopped")
    assert "nothing was saved" in EMPTY
    assert text_result("Words.", identity, "cpu", 2, 0.1, "eos").title == "Words."


def test_a_rewrite_keeping_the_original_s_own_opening_is_no_commentary():
    from plugins.text.generator import rewrite_problem

    assert rewrite_problem("The text was short.", "The text is short and sharp.") == ""


def test_what_the_panel_says_when_a_reply_finishes():
    from plugins.text.panel import TextPanel

    def said(task, meta, original="The cat sat.", text="The tabby sprawled.", tokens=90):
        request = Request("text", task, params={"max_tokens": tokens})
        return TextPanel.finish_message(request, meta, original, text)

    cut = said("generate", {"finish_reason": "interrupted",
                            "interrupted": "the server closed the stream"})
    assert cut[1] and "cut off (the server closed the stream)" in cut[0]
    assert said("generate", {"finish_reason": "length"}) == (
        "Stopped at Max tokens (90): Continue (Ctrl+Shift+Return) writes on, or raise Max "
        "tokens under Advanced.", False)
    assert said("generate", {"finish_reason": "eos"}) is None
    assert "talked about the text" in said(
        "rewrite", {"finish_reason": "eos"},
        text="In this context, the sentence is more vivid because it uses a metaphor.")[0]
    assert "unchanged" in said("rewrite", {"finish_reason": "eos"}, text="The cat sat.")[0]
    assert "reached Max tokens (90)" in said("rewrite", {"finish_reason": "length"})[0]
    assert said("rewrite", {"finish_reason": "eos"}) is None
