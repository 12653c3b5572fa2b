"""The studio's look and first run (issue 38): the work in the centre with an Advanced fold
that remembers, no sideways scrolling at 1024×700, contrast of both themes, icons, focus
mode, the welcome page with its sample project, the manual and the shortcuts."""

from __future__ import annotations

import hashlib

import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QAbstractScrollArea, QApplication, QLabel

pytestmark = pytest.mark.gui


def _shown(window, panel, size=(1024, 700)):
    window.resize(*size)
    window.tabs.setCurrentWidget(panel)
    QApplication.processEvents()


def _sideways(panel) -> list[str]:
    """The visible scroll areas of a panel that scroll sideways."""
    return [f"{type(area).__name__} {area.objectName()}"
            for area in panel.findChildren(QAbstractScrollArea)
            if area.isVisible() and area.horizontalScrollBar().maximum() > 0]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_no_panel_scrolls_sideways_at_1024_by_700_with_the_fold_open_or_shut(make_window,
                                                                            theme):
    from creative_studio.core.settings import Settings

    window = make_window(settings=Settings(theme=theme))
    for plugin_id, panel in window.panels.items():
        for opened in (False, True):
            panel.fold.set_open(opened)
            _shown(window, panel)
            assert window.size().toTuple() == (1024, 700)
            assert not _sideways(panel), (plugin_id, opened, _sideways(panel))
        panel.fold.set_open(False)


def test_the_advanced_fold_remembers_its_state_across_launches(make_window, tmp_path):
    from creative_studio.core.settings import Settings

    window = make_window()
    text = window.panels["text"]
    assert not text.fold.is_open() and not text.temperature.isVisible()
    text.fold.set_open(True)
    QApplication.processEvents()
    assert text.temperature.isVisible()
    assert Settings.load().folds == {"text": True}  # saved at once
    again = make_window(settings=Settings.load())
    assert again.panels["text"].fold.is_open() and not again.panels["image"].fold.is_open()
    again.panels["text"].fold.set_open(False)
    assert Settings.load().folds == {"text": False}


def test_the_essentials_sit_with_the_work_and_the_rest_folds_away(make_window):
    window = make_window()
    text, image = window.panels["text"], window.panels["image"]
    _shown(window, text)
    assert text.model.isVisible() and text.instruction.isVisible()
    assert not any(w.isVisible() for w in (text.system, text.temperature, text.top_p,
                                          text.seed_field, text.alternatives))
    _shown(window, image)
    assert image.prompt.isVisible() and image.model.isVisible()
    assert not image.steps.isVisible() and not image.seed_field.isVisible()
    # a recipe still fills the folded settings (they are there, only folded)
    image.steps.setValue(7)
    assert image.param_values("generate")["steps"] == 7


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_both_themes_pass_wcag_aa_for_text_computed_from_the_live_palette(qapp, theme):
    from creative_studio.ui.theme import PAIRS, PALETTES, apply_theme, contrast

    apply_theme(qapp, theme)
    palette = qapp.palette()
    try:
        for what, fg, bg, need in PAIRS:
            colours = []
            for role in (fg, bg):
                if hasattr(QPalette.ColorRole, role):
                    colours.append(palette.color(getattr(QPalette.ColorRole, role)))
                else:  # the studio's own colours (errors, disabled)
                    colours.append(PALETTES[theme][role])
            assert contrast(*colours) >= need, (theme, what, contrast(*colours))
    finally:
        apply_theme(qapp, "light")


def test_contrast_is_wcag_s_formula():
    from creative_studio.ui.theme import contrast

    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the famous grey
    assert contrast("#123456", "#123456") == pytest.approx(1.0)


def test_icons_on_tabs_and_toolbar_follow_the_theme(make_window):
    window = make_window()
    assert all(not window.tabs.tabIcon(i).isNull() for i in range(window.tabs.count()))
    actions = [a for a in window.toolbar.actions() if not a.isSeparator()]
    assert len(actions) >= 12 and all(not a.icon().isNull() for a in actions)
    assert all(a.toolTip() for a in actions)

    def ink() -> int:  # the darkest channel value drawn by the Save icon
        image = window.acts["save"].icon().pixmap(32, 32).toImage()
        values = [image.pixelColor(x, y) for x in range(32) for y in range(32)]
        return max(c.lightness() for c in values if c.alpha() > 200)

    light = ink()
    window.toggle_theme()
    try:
        assert ink() > light + 100  # drawn again in the dark theme's light text colour
    finally:
        window.toggle_theme()


def test_the_toolbar_generate_follows_the_panel_shown(make_window):
    window = make_window()
    assert not window.acts["stop"].isEnabled()  # nothing runs at start
    window.tabs.setCurrentWidget(window.panels["upscale"])
    assert window.acts["generate"].text() == "Upscale"
    window.tabs.setCurrentWidget(window.panels["music"])
    assert window.acts["generate"].text() == "Generate"
    assert not window.acts["stop"].isEnabled()


def test_focus_mode_shows_the_document_alone_at_a_readable_measure(make_window, qtbot):
    window = make_window()
    text = window.panels["text"]
    _shown(window, text, (1400, 900))
    text.editor.setPlainText("word " * 500)
    assert text.word_count.text() == "500 words · 3 min read"
    window.acts["focus"].trigger()
    QApplication.processEvents()
    hidden = (window.history_dock, window.toolbar, window.tabs.tabBar(), text.side_scroll,
              text.instruction)
    assert not any(w.isVisible() for w in hidden)
    margin = text.editor.viewportMargins().left()
    line = text.editor.viewport().width() - 2 * text.editor.document().documentMargin()
    chars = line / text.editor.char_width()
    assert margin > 100 and 60 <= chars <= 75, (margin, chars)
    window.acts["focus"].trigger()
    QApplication.processEvents()
    assert all(w.isVisible() for w in hidden) and text.editor.viewportMargins().left() == 0


def test_reading_time():
    from plugins.text.panel import reading_time

    assert reading_time(0) == "" and reading_time(50) == "under 1 min read"
    assert reading_time(238) == "1 min read" and reading_time(239) == "2 min read"


def test_the_serif_choice_is_kept(make_window):
    from creative_studio.core.settings import Settings

    window = make_window()
    text = window.panels["text"]
    sans = text.editor.font().family()
    window.serif_action.trigger()
    assert Settings.load().serif and text.editor.font().family() != sans
    again = make_window(settings=Settings.load())
    assert again.panels["text"].editor.font().family() == text.editor.font().family()


def test_the_welcome_page_opens_once_and_says_what_each_model_can_and_cannot_do(
        make_window, monkeypatch):
    from creative_studio.core.settings import Settings
    from creative_studio.ui.guide import WelcomeDialog

    monkeypatch.delenv("CREATIVE_STUDIO_NO_DIALOGS")
    window = make_window(settings=Settings())
    window.first_run()
    dialog = window.welcome
    assert isinstance(dialog, WelcomeDialog) and dialog.isVisible()
    assert Settings.load().welcomed
    labels = " ".join(label.text() for label in dialog.findChildren(QLabel))
    for panel in window.panels.values():
        offer = panel.manifest.default_model
        assert offer.summary and offer.limits
        assert offer.summary in labels and offer.limits in labels
    dialog.reject()
    window.welcome = None
    window.first_run()  # seen: not again
    assert window.welcome is None


def test_start_writing_and_drawing_put_the_user_at_the_prompt(make_window):
    from creative_studio.ui.guide import WelcomeDialog

    window = make_window()
    dialog = WelcomeDialog(window)
    dialog.show()
    dialog.start_buttons["image"].click()
    image = window.panels["image"]
    assert window.tabs.currentWidget() is image and image.prompt.toPlainText() == "red apple"
    assert image.prompt.textCursor().hasSelection()  # typing replaces the example
    dialog = WelcomeDialog(window)
    dialog.start_buttons["text"].click()
    assert window.tabs.currentWidget() is window.panels["text"]
    assert window.panels["text"].instruction.toPlainText()


def test_the_sample_project_opens_as_a_copy_with_one_result_per_panel(make_window):
    from creative_studio.ui.guide import SAMPLE, WelcomeDialog

    before = hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    window = make_window()
    WelcomeDialog(window).open_sample()
    assert window.store.path != SAMPLE
    plugins = {item.plugin for item in window.store.items()}
    assert plugins >= {"text", "image", "music", "upscale"}
    assert window.history.tree.topLevelItemCount() >= 4
    window.store.close()
    assert hashlib.sha256(SAMPLE.read_bytes()).hexdigest() == before


def test_the_own_model_menu_offers_each_panel_s_ways(make_window):
    from creative_studio.ui.guide import WelcomeDialog

    window = make_window()
    menu = WelcomeDialog(window).own_model.menu()
    names = {a.text(): [x.text() for x in a.menu().actions()] for a in menu.actions()}
    assert "GGUF file…" in names["Text"] and "Pipeline folder…" in names["Image"]
    assert "Model file…" in names["Upscale"] and "Model folder…" in names["Music"]


def test_the_manual_shows_the_readme_offline(make_window):
    from creative_studio.ui.guide import ManualDialog

    window = make_window()
    manual = ManualDialog(window)
    assert manual.index.count() >= 2
    assert "Creative Studio" in manual.browser.toPlainText()


def test_the_shortcuts_list_every_keyed_action(make_window):
    from creative_studio.ui.guide import ShortcutsDialog, shortcuts_of

    window = make_window()
    keys = {(where, keys) for where, _what, keys in shortcuts_of(window)}
    for expected in (("Window", "F11"), ("Window", "Ctrl+1"), ("Text", "Ctrl+Return"),
                     ("Text", "Ctrl+Shift+Return"), ("Music", "Space"), ("Upscale", "Ctrl+0"),
                     ("Image", "Esc")):
        assert expected in keys, expected
    # every toolbar action has a key (but the welcome page, as in the craft's tools)
    for action in window.toolbar.actions():
        if not action.isSeparator() and action is not window.acts["welcome"]:
            assert not action.shortcut().isEmpty(), action.text()
    dialog = ShortcutsDialog(window)
    assert dialog.table.rowCount() == len(shortcuts_of(window))


def test_history_has_no_sideways_scrolling_in_its_dock(make_window):
    window = make_window()
    window.resize(1024, 700)
    QApplication.processEvents()
    assert window.history.tree.horizontalScrollBar().maximum() == 0
    assert window.history.tree.isColumnHidden(1)


def test_the_text_panel_s_status_line_has_room_at_1024_px(make_window):
    window = make_window()
    text = window.panels["text"]
    _shown(window, text)
    text.status.setText("90 tokens, 30.1 tok/s · cut off at Max tokens")
    QApplication.processEvents()
    assert text.status.isVisible() and text.status.width() >= 200, text.status.width()


def test_closing_the_window_closes_the_welcome_page_so_the_studio_quits(make_window,
                                                                       monkeypatch):
    from creative_studio.core.settings import Settings

    monkeypatch.delenv("CREATIVE_STUDIO_NO_DIALOGS")
    window = make_window(settings=Settings())
    window.first_run()
    assert window.welcome.isVisible()
    monkeypatch.setenv("CREATIVE_STUDIO_NO_DIALOGS", "1")  # no question at close
    window.close()
    QApplication.processEvents()
    assert not any(w.isVisible() for w in QApplication.topLevelWidgets())


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_control_boundaries_are_drawn_at_3_to_1(qapp, theme):
    """WCAG 1.4.11: a button's, a field's and a combo box's edge against the window."""
    from PySide6.QtWidgets import QComboBox, QLineEdit, QPushButton

    from creative_studio.ui.theme import PALETTES, apply_theme, contrast

    apply_theme(qapp, theme)
    try:
        window = PALETTES[theme]["Window"]
        for widget in (QPushButton("Generate"), QLineEdit("text"), QComboBox()):
            widget.resize(120, 30)
            image = widget.grab().toImage()
            edge = min((image.pixelColor(60, y) for y in range(3)),
                       key=lambda c: -contrast(c, window))  # the strongest of the top rows
            assert contrast(edge, window) >= 3.0, (type(widget).__name__, edge.name())
    finally:
        apply_theme(qapp, "light")


def test_the_embedded_text_model_says_what_it_is(make_window):
    window = make_window()
    text = window.panels["text"]
    _shown(window, text)
    assert text.model_note.isVisible() and "add your own GGUF or a server" in \
        text.model_note.text()
    assert "Tiny (135M)" in text.model_note.toolTip()
    text.add_model_ref("/models/my-model.gguf", "GGUF: my-model.gguf")
    assert not text.model_note.isVisible()
