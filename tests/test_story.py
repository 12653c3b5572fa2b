"""A story that remembers: notes chosen by keyword, the author's note at its depth, what the
model saw part by part; the CLI's ``notes``; the Notes dialog and the project it writes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creative_studio.core.jobs import Request
from plugins.text import story
from plugins.text.generator import TextGenerator
from plugins.text.story import Note, Story

MARA = {"title": "Mara", "text": "Mara has green eyes and a scar on her chin.",
        "kind": "character"}
TONE = {"title": "Tone", "text": "Quiet, melancholy, short sentences.", "pinned": True}
PORT = {"title": "Port Vell", "text": "A fishing harbour that smells of tar.",
        "keys": ["harbour", "port"]}
STORY = {"notes": [MARA, TONE, PORT], "author_note": "It is raining.", "depth": 1}


def request_with(task="continue", prompt="", context="", **params) -> Request:
    base = {"temperature": 0.7, "top_p": 0.9, "max_tokens": 50, "system": "",
            "story": json.dumps(STORY), "context": context, **params}
    if task == "rewrite":
        base.pop("context")
    return story.resolve(Request("text", task, prompt, params=base))


def chosen_titles(request: Request) -> list[str]:
    return [n["title"] for n in request.params["notes_chosen"]]


def test_a_note_joins_by_keyword_near_the_cursor_or_in_the_instruction_and_pinned_always():
    assert chosen_titles(request_with(context="Nothing here.")) == ["Tone"]
    assert chosen_titles(request_with(context="Then Mara laughed.")) == ["Mara", "Tone"]
    assert chosen_titles(request_with("generate", "Describe the harbour.",
                                      context="")) == ["Tone", "Port Vell"]
    # whole words only: "Marathon" is no Mara
    assert chosen_titles(request_with(context="He ran a Marathon.")) == ["Tone"]
    # a keyword far before the cursor does not count
    far = "Mara left. " + "The sea was grey. " * 200
    assert chosen_titles(request_with(context=far)) == ["Tone"]
    why = request_with(context="Then Mara laughed.").params["notes_chosen"]
    assert why[0]["why"] == "“Mara” in the text near the cursor" and why[1]["why"] == "pinned"


def test_the_notes_and_the_authors_note_are_in_every_engines_prompt():
    request = request_with(context="First paragraph.\nMara stood up.\nShe waited.")
    raw = story.continuation(request)
    assert raw.startswith("[Mara: Mara has green eyes and a scar on her chin.\nTone: ")
    # depth 1: before the last paragraph
    assert raw.endswith("Mara stood up.\n[Author's note: It is raining.]\nShe waited.")
    chat = request_with("generate", "Write on.", context="Mara stood up.")
    user = TextGenerator.messages(chat)[-1]["content"]
    assert user.startswith("Story notes (keep to these facts):\n- Mara: Mara has green eyes")
    assert user.index("Write on.") < user.index("[Author's note: It is raining.]")
    rewrite = request_with("rewrite", "Make it vivid.", selection="Mara ran.")
    assert "- Mara: " in TextGenerator.messages(rewrite)[-1]["content"]


def test_what_the_model_saw_lists_each_part_and_why():
    request = request_with("generate", "Write on.", context="Mara stood up.",
                           system="You write novels.")
    parts = story.counted(request, lambda text: len(text.split()), 100)
    names = [p["part"] for p in parts]
    assert names == ["System prompt", "Note: Mara", "Note: Tone", "Instruction", "Document",
                     "Author's note", "Chat format, brackets and labels"]
    assert parts[1]["why"] == "“Mara” in the text near the cursor"
    assert sum(p["tokens"] for p in parts) == 100
    # the recipe has the document: the parts keep only how much of its end was read
    assert parts[4]["text"] == "" and parts[4]["chars"] == len("Mara stood up.")
    assert story.filled(parts, request)[4]["text"] == "Mara stood up."


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=64).map(repr),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                              lambda inner: st.lists(inner, max_size=4)
                              | st.dictionaries(st.sampled_from(
                                  ["notes", "title", "text", "keys", "pinned", "depth",
                                   "author_note", "kind"]), inner, max_size=6),
                              max_leaves=30)))
def test_a_hostile_story_never_raises_and_stays_bounded(value):
    parsed = Story.from_value(value)
    assert all(n.title and n.text for n in parsed.notes)
    assert 1 <= parsed.depth <= 50
    Story.from_value(parsed.to_json())  # round trip
    assert parsed.chosen("x", "y") is not None


def test_editing_a_story_refuses_duplicates_and_missing_notes():
    from creative_studio.core.errors import BadInput

    told = Story.from_value(STORY)
    with pytest.raises(BadInput, match="already"):
        told.add(Note("mara", "again"))
    with pytest.raises(BadInput, match="No note"):
        told.remove("Nobody")
    assert told.remove("MARA").title == "Mara"


def test_the_cli_keeps_notes_in_the_project_and_generate_uses_them(tmp_path, capsys):
    from creative_studio.cli import main
    from creative_studio.core.project import ProjectStore

    project = str(tmp_path / "story.csproj")
    assert main(["notes", "add", "--project", project, "--title", "Mara", "--text",
                 "Mara has green eyes.", "--kind", "character"]) == 0
    assert main(["notes", "author", "--project", project, "--text", "Rain.",
                 "--depth", "2"]) == 0
    assert main(["notes", "list", "--project", project]) == 0
    listed = capsys.readouterr().out
    assert "Mara [character] (joins on: Mara)" in listed and "Rain." in listed
    assert main(["notes", "remove", "--project", project, "--title", "Nobody"]) == 2
    assert "No note is called" in capsys.readouterr().err
    assert main(["generate", "text", "--project", project, "--prompt", "Describe Mara.",
                 "--max-tokens", "8", "--seed", "1", "--quiet"]) == 0
    store = ProjectStore.open(project)
    item = store.items()[-1]
    assert json.loads(item.request.params["story"])["notes"][0]["title"] == "Mara"
    parts = item.metadata["prompt_parts"]
    assert parts[0]["part"] == "Note: Mara" and parts[0]["why"] == "“Mara” in the instruction"
    assert parts[0]["tokens"] > 3
    store.close()


@pytest.mark.model
def test_a_rerun_builds_the_same_prompt_and_a_long_document_keeps_the_notes():
    from creative_studio.core.progress import Progress
    from plugins.text.llama_engine import LlamaEngine
    from tests.conftest import prepared, source_of

    engine = LlamaEngine(source_of("text"), max_context=512)
    try:
        document = ("The tide came in slowly over the flats. " * 120) + "Mara looked up."
        request = prepared(Request("text", "continue", params={
            "context": document, "story": json.dumps(STORY), "max_tokens": 16}, seed=4))
        first = TextGenerator()
        first.engine = engine
        result = first.generate(request, Progress(), None)
        again = first.generate(Request.from_dict(request.to_dict()), Progress(), None)
        assert result.metadata["prompt_parts"] == again.metadata["prompt_parts"]
        assert result.assets[0].data == again.assets[0].data
        parts = {p["part"]: p for p in result.metadata["prompt_parts"]}
        assert "Note: Mara" in parts and "Note: Tone" in parts
        assert parts["Document (its end)"]["why"].startswith("the first ")
        assert result.metadata["words_left_out"] > 0
        assert result.metadata["prompt_tokens"] + 16 <= 512
    finally:
        engine.close()


@pytest.mark.gui
def test_the_notes_dialog_writes_the_project_and_jobs_carry_the_story(make_window, qtbot):
    from plugins.text.notes import NotesDialog, SawDialog

    window = make_window()
    panel = window.panels["text"]
    dialog = NotesDialog(panel, window.store)
    dialog.add()
    dialog.title.setText("Mara")
    dialog.title.textEdited.emit("Mara")
    dialog.text.setPlainText("Mara has green eyes.")
    dialog.author.setPlainText("Night falls.")
    dialog.save()
    kept = Story.from_value(window.store.get_state("story"))
    assert [n.title for n in kept.notes] == ["Mara"] and kept.author_note == "Night falls."
    assert json.loads(panel.param_values("continue")["story"])["notes"][0]["text"] == \
        "Mara has green eyes."
    dialog.list.setCurrentRow(0)
    dialog.remove()
    assert Story.from_value(window.store.get_state("story")).notes == []
    dialog.close()
    parts = [{"part": "Note: Mara", "text": "green", "why": "pinned", "tokens": 3}]
    saw = SawDialog(panel, "a reply", parts, 40)
    assert saw.table.item(0, 0).text() == "Note: Mara" and saw.text.toPlainText() == "green"
    saw.close()
