"""Everyday editing in the Text panel, through the real window and the real model: where a
reply goes, one undo step per generation, rewrites cut short, History → Insert, exporting
the document."""

from __future__ import annotations

import zipfile

import pytest
from PySide6.QtGui import QGuiApplication, QTextCursor

from creative_studio.core.jobs import JobState

pytestmark = [pytest.mark.gui, pytest.mark.model]
DRAFT = "The lighthouse stood alone.\nIts keeper wrote every night."


@pytest.fixture
def panel(make_window):
    from tests.helpers import text_panel

    return text_panel(make_window, seed=3, max_tokens=12)


def finish(qtbot, panel):
    job = panel.window_.runner.jobs[-1]
    qtbot.waitUntil(lambda: job.state.finished and panel._stream is None, timeout=120_000)
    assert job.state is JobState.DONE, job.error
    return job


def reopened(panel, text=DRAFT):
    """The panel as after reopening a project: the draft back, no cursor placed."""
    panel.restore_work({"document": text, "instruction": "Write one more sentence."})


def test_after_reopening_a_reply_goes_at_the_end_as_a_new_paragraph(qtbot, panel):
    reopened(panel)
    panel.generate()
    job = finish(qtbot, panel)
    reply = job.result.assets[0].data.decode()
    assert panel.editor.toPlainText() == DRAFT + "\n\n" + reply  # not glued to the text


def test_a_reply_goes_where_the_user_placed_the_cursor(qtbot, panel):
    reopened(panel)
    panel.editor.setFocus()
    qtbot.waitUntil(panel.editor.hasFocus, timeout=5000)
    cursor = panel.editor.textCursor()
    cursor.setPosition(len("The lighthouse stood alone."))
    panel.editor.setTextCursor(cursor)
    panel.generate()
    job = finish(qtbot, panel)
    reply = job.result.assets[0].data.decode()
    # at the end of a line: a new paragraph there, never glued to the sentence
    assert panel.editor.toPlainText() == ("The lighthouse stood alone.\n\n" + reply +
                                          "\nIts keeper wrote every night.")


def test_a_reply_at_a_cursor_placed_at_the_end_starts_a_new_paragraph(qtbot, panel):
    """Found by a new user: "help with!As I stepped into…" — the cursor put at the end."""
    reopened(panel, "Here is what I need help with!")
    panel.editor.setFocus()
    qtbot.waitUntil(panel.editor.hasFocus, timeout=5000)
    panel.editor.moveCursor(QTextCursor.MoveOperation.End)
    panel.generate()
    job = finish(qtbot, panel)
    reply = job.result.assets[0].data.decode()
    assert panel.editor.toPlainText() == "Here is what I need help with!\n\n" + reply
    panel.use_output(job.item_id and panel.window_.store.item(job.item_id))
    assert panel.editor.toPlainText().endswith(reply + "\n\n" + reply)  # Insert too


def test_continue_sends_the_document_not_a_stale_instruction(qtbot, panel):
    reopened(panel)  # its instruction box holds an earlier instruction
    panel.continue_text()
    job = finish(qtbot, panel)
    assert job.request.prompt == "" and job.request.params["context"] == DRAFT
    item = panel.window_.store.item(job.item_id)
    assert "Write one more sentence" not in item.title


def test_each_generation_is_one_undo_step(qtbot, panel):
    reopened(panel)
    panel.max_tokens.setValue(30)
    panel.generate()
    finish(qtbot, panel)
    assert panel.editor.toPlainText() != DRAFT
    panel.window_._current_panel_call("undo")  # Edit → Undo
    assert panel.editor.toPlainText() == DRAFT
    panel.window_._current_panel_call("redo")
    assert panel.editor.toPlainText().startswith(DRAFT + "\n\n")


def test_a_rewrite_cut_by_max_tokens_says_so_and_undo_gives_the_selection_back(qtbot, panel):
    reopened(panel)
    cursor = panel.editor.textCursor()
    cursor.setPosition(0)
    cursor.setPosition(len("The lighthouse stood alone."), QTextCursor.MoveMode.KeepAnchor)
    panel.editor.setTextCursor(cursor)
    panel.instruction.setPlainText("Rewrite this as a long, detailed description.")
    panel.max_tokens.setValue(3)
    panel.rewrite()
    job = finish(qtbot, panel)
    assert job.result.metadata["finish_reason"] == "length"
    assert "reached Max tokens (3)" in panel.message.text() and panel.message.isVisible()
    panel.undo()
    assert panel.editor.toPlainText() == DRAFT
    assert job.request.params["selection"] == "The lighthouse stood alone."  # kept too


def test_history_insert_puts_an_alternative_at_the_cursor(qtbot, panel):
    reopened(panel, "First paragraph.")
    panel.alternatives.setValue(2)
    panel.generate()
    finish(qtbot, panel)
    window = panel.window_
    qtbot.waitUntil(lambda: len(window.store.items()) == 2
                    and all(j.state.finished for j in window.runner.jobs), timeout=120_000)
    first, second = window.store.items()
    after_first = panel.editor.toPlainText()
    panel.editor.setFocus()
    qtbot.waitUntil(panel.editor.hasFocus, timeout=5000)
    cursor = panel.editor.textCursor()
    cursor.setPosition(len("First paragraph."))
    panel.editor.setTextCursor(cursor)
    panel.use_output(second)
    alternative = window.store.item_text(second)
    assert panel.editor.toPlainText() == ("First paragraph.\n\n" + alternative +
                                          after_first[len("First paragraph."):])
    assert window.store.item_text(first) in panel.editor.toPlainText()  # nothing replaced


def test_the_document_exports_as_txt_md_docx_and_copies(qtbot, panel, tmp_path):
    reopened(panel, "Title line\n\nA paragraph\nwith a line break.\n\nLast one.")
    for suffix in (".txt", ".md"):
        path = panel.export_document(tmp_path / f"doc{suffix}")
        assert path.read_text(encoding="utf-8") == panel.editor.toPlainText() + "\n"
    path = panel.export_document(tmp_path / "doc.docx")
    from docx import Document

    document = Document(str(path))
    assert [p.text for p in document.paragraphs] == ["Title line",
                                                     "A paragraph\nwith a line break.",
                                                     "Last one."]
    assert zipfile.is_zipfile(path)
    assert panel.export_document(tmp_path / "doc.pdf") is None
    assert "Export the document as" in panel.message.text()
    panel.copy_document()
    assert QGuiApplication.clipboard().text() == panel.editor.toPlainText()
