from __future__ import annotations

from collections import Counter
from pathlib import Path

FAKE_MANIFEST = """
schema_version = 1
id = "{id}"
name = "{name}"
modality = "text"
order = {order}
generator = "{generator}"
panel = "{panel}"

[[models]]
id = "reverse"
name = "Reverse"
source = "embedded"
default = true
"""


def write_plugin(root: Path, folder: str, *, id: str, name: str = "Fake", order: int = 50,
                 generator: str = "tests.fake_plugin:ReverseGenerator",
                 panel: str = "creative_studio.ui.panel:PluginPanel", extra: str = "") -> Path:
    path = root / folder
    path.mkdir(parents=True, exist_ok=True)
    (path / "plugin.toml").write_text(FAKE_MANIFEST.format(
        id=id, name=name, order=order, generator=generator, panel=panel) + extra)
    return path


def finished_item(qtbot, window, panel, job, timeout: int = 60_000):
    """Wait for a panel's job to finish; it must be DONE. Its project item."""
    from creative_studio.core.jobs import JobState

    qtbot.waitUntil(lambda: job.state.finished and not panel.jobs, timeout=timeout)
    assert job.state is JobState.DONE, job.error
    return window.store.item(job.item_id)


def window_with_server(make_window, name: str, url: str, kind: str = "openai"):
    """The real window with one server (OpenAI-compatible by default) in its preferences."""
    window = make_window()
    window.settings.servers = [{"name": name, "url": url, "kind": kind}]
    window.apply_settings()
    return window


def examples(count: int, least: int = 5) -> int:
    """Hypothesis examples for a property (or cases of a campaign): a quarter, at least
    ``least``, under mutation testing (mutmut sets MUTANT_UNDER_TEST; each of thousands of
    mutants runs the test again)."""
    import os

    return max(least, count // 4) if os.environ.get("MUTANT_UNDER_TEST") else count


def drop_studio_log() -> None:
    """Undo ``core.logs.setup``: remove and close the studio's file handlers (a test that set
    up the log leaves the next tests logging nowhere but where they choose)."""
    import logging

    for name in ("creative_studio", "plugins"):
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if getattr(h, "_studio", False)]:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(logging.NOTSET)


class Outcomes(Counter):
    """What a property test met, counted over all its examples, so that it can show that each
    kind of case it claims to check came up: a property whose examples were all refused
    checked nothing. The property runs inside a plain test that owns the counter:

        seen = Outcomes()

        @given(...)
        def check(value):
            ...
            seen["refused"] += 1

        check()
        seen.require("refused", "accepted")
    """

    def require(self, *kinds: str, at_least: int = 1) -> None:
        missing = [kind for kind in kinds if self[kind] < at_least]
        assert not missing, f"no example reached {missing}; seen {dict(self)}"


def text_panel(make_window, seed: int, max_tokens: int):
    """The real window's Text panel, shown, with a fixed seed and a short Max tokens (the
    window is ``panel.window_``)."""
    window = make_window()
    panel = window.panels["text"]
    window.tabs.setCurrentWidget(panel)
    panel.seed_mode.setCurrentText("fixed")
    panel.seed.setValue(seed)
    panel.max_tokens.setValue(max_tokens)
    panel.window_ = window
    return panel
