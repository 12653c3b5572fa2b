"""The widgets the panels' base class makes for declared parameters (creative_studio/ui/
panel.py ``make_widget``): ranges, steps, decimals, labels and defaults as a manifest
declares them, and the full range where it declares none."""

from __future__ import annotations

import logging

import pytest

from creative_studio.core.params import Param
from creative_studio.ui.panel import make_widget, widget_value

pytestmark = pytest.mark.usefixtures("qtbot")


def param(**fields) -> Param:
    return Param.from_dict({"name": "x", **fields})


def test_numbers_take_their_declared_range_and_step_or_the_whole_range():
    free = make_widget(param(type="int", default=3))
    assert (free.minimum(), free.maximum(), free.singleStep(), free.value()) == (
        -2**31, 2**31 - 1, 1, 3)
    bounded = make_widget(param(type="int", default=8, min=1, max=64, step=8,
                                special="auto"))
    assert (bounded.minimum(), bounded.maximum(), bounded.singleStep()) == (1, 64, 8)
    assert bounded.specialValueText() == "auto"
    real = make_widget(param(type="float", default=0.5))
    assert (real.minimum(), real.maximum(), real.decimals()) == (-1e9, 1e9, 2)
    assert real.singleStep() == pytest.approx(0.1)
    for step, decimals in ((1.0, 0), (0.5, 2), (0.05, 2), (0.001, 3), (0.0001, 4)):
        widget = make_widget(param(type="float", default=0.0, min=0.0, max=2.0, step=step))
        assert widget.decimals() == decimals, step
        assert widget.singleStep() == pytest.approx(step)


def test_choices_texts_and_flags_show_their_labels_help_and_defaults():
    choice = make_widget(param(type="choice", default="b", choices=["a", "b"],
                               labels=["Alpha", "Beta"], help="which one"))
    assert [choice.itemText(i) for i in range(2)] == ["Alpha", "Beta"]
    assert widget_value(choice) == "b" and choice.toolTip() == "Which one"
    text = make_widget(param(type="text", default="hello", help="what to say"))
    assert widget_value(text) == "hello" and text.placeholderText() == "What to say"
    line = make_widget(param(type="str", default="", help="a name"))
    assert line.placeholderText() == "A name" and line.toolTip() == "A name"
    flag = Param.from_dict({"name": "strict_key", "type": "bool", "default": True})
    box = make_widget(flag)
    assert box.text() == flag.title and widget_value(box) is True


def test_a_server_that_does_not_list_its_models_is_left_out_and_logged(
        qtbot, make_window, tmp_path, monkeypatch, caplog):
    from creative_studio.core.servers import ServerConfig
    from creative_studio.engines import catalog

    window = make_window()
    panel = window.panels["text"]
    window.settings.servers = [ServerConfig("box", "http://127.0.0.1:9").to_dict(),
                               ServerConfig("up", "http://127.0.0.1:8").to_dict()]

    def models(server, key=None, timeout=15.0, modality=""):
        if server.name == "box":
            raise OSError("refused")
        return ["m1"]

    monkeypatch.setattr(catalog, "models", models)
    caplog.set_level(logging.INFO)
    panel.list_server_models()
    qtbot.waitUntil(lambda: panel.model.findData("server:up/m1") >= 0, timeout=10_000)
    assert panel.model.itemText(panel.model.findData("server:up/m1")) == "m1 — up"
    assert "models of box not listed: refused" in caplog.text
