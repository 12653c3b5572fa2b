"""Light and dark themes (Qt's Fusion style with the studio's palettes), and their contrast.

Both palettes are chosen so that every pair of text and its background passes WCAG 2.2 AA
(4.5:1 for text, 3:1 for the focus/selection indicator and the controls' outlines, which
``StudioStyle`` draws in the palette's ``Outline`` colour); ``contrast_report``
computes the ratios from the palettes themselves (tools/ui_figures.py prints them, a test
checks them). Disabled text is listed but, as WCAG exempts inactive controls, not required.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle, QStyleFactory

THEMES = ("light", "dark")
R = QPalette.ColorRole

# role → colour. Error: the panels' error messages (on the window colour).
PALETTES: dict[str, dict[str, str]] = {
    "light": {
        "Window": "#f3f3f3", "WindowText": "#1f1f1f", "Base": "#ffffff",
        "AlternateBase": "#f6f6f6", "Text": "#1f1f1f", "Button": "#ececec",
        "ButtonText": "#1f1f1f", "Highlight": "#1f5fbf", "HighlightedText": "#ffffff",
        "PlaceholderText": "#666666", "ToolTipBase": "#fffbe0", "ToolTipText": "#1f1f1f",
        "Link": "#1a56b0", "LinkVisited": "#6a3ab0", "BrightText": "#ffffff",
        "Disabled": "#8c8c8c", "Error": "#b3261e", "Outline": "#858585",
        "Light": "#ffffff", "Midlight": "#e3e3e3", "Mid": "#b8b8b8", "Dark": "#9a9a9a",
        "Shadow": "#6f6f6f",
    },
    "dark": {
        "Window": "#26282b", "WindowText": "#dfe1e5", "Base": "#1e1f22",
        "AlternateBase": "#232427", "Text": "#dfe1e5", "Button": "#35373b",
        "ButtonText": "#dfe1e5", "Highlight": "#356dd6", "HighlightedText": "#ffffff",
        "PlaceholderText": "#999ca3", "ToolTipBase": "#3c3f44", "ToolTipText": "#dfe1e5",
        "Link": "#82b1ff", "LinkVisited": "#c3a6ff", "BrightText": "#ffffff",
        "Disabled": "#797c82", "Error": "#ff8a80", "Outline": "#74787f",
        "Light": "#4a4d52", "Midlight": "#3c3f44", "Mid": "#232427", "Dark": "#17181a",
        "Shadow": "#0d0d0e",
    },
}

# (what, text role, background role, the ratio WCAG AA asks for; 0 = listed, not required)
PAIRS = (
    ("Text in fields", "Text", "Base", 4.5),
    ("Labels on the window", "WindowText", "Window", 4.5),
    ("Button text", "ButtonText", "Button", 4.5),
    ("Selected text", "HighlightedText", "Highlight", 4.5),
    ("Placeholder text", "PlaceholderText", "Base", 4.5),
    ("Tooltips", "ToolTipText", "ToolTipBase", 4.5),
    ("Links", "Link", "Base", 4.5),
    ("Error messages", "Error", "Window", 4.5),
    ("Alternate rows", "Text", "AlternateBase", 4.5),
    ("Selection and focus against the window", "Highlight", "Window", 3.0),
    ("Selection and focus against fields", "Highlight", "Base", 3.0),
    ("Control outlines against the window", "Outline", "Window", 3.0),
    ("Control outlines against fields", "Outline", "Base", 3.0),
    ("Disabled text (exempt)", "Disabled", "Window", 0.0),
)


# one type scale and one spacing for every page and panel (point size × factor)
TYPE_SCALE = {"title": 1.6, "section": 1.15, "body": 1.0, "small": 0.9}
SPACING = 8  # px between a panel's rows and groups


def set_type(widget, role: str, bold: bool | None = None):
    """Set ``widget``'s font to a step of the type scale (titles and sections bold)."""
    font = widget.font()
    app = QApplication.instance()
    base = app.font().pointSizeF() if app is not None else font.pointSizeF()
    font.setPointSizeF(base * TYPE_SCALE[role])
    font.setBold(role in ("title", "section") if bold is None else bold)
    widget.setFont(font)
    return widget


def luminance(color: str | QColor) -> float:
    """WCAG relative luminance of an sRGB colour."""
    c = QColor(color)

    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    return (0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF())
            + 0.0722 * channel(c.blueF()))


def contrast(a: str | QColor, b: str | QColor) -> float:
    """WCAG contrast ratio of two colours (1 … 21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def contrast_report(name: str) -> list[tuple[str, float, float]]:
    """(what, ratio, required) for each text/background pair of theme ``name``."""
    colors = PALETTES[name]
    return [(what, round(contrast(colors[fg], colors[bg]), 2), need)
            for what, fg, bg, need in PAIRS]


def error_color(app: QApplication | None = None) -> str:
    """The colour of error messages in the current theme (AA on the window colour)."""
    app = app or QApplication.instance()
    name = app.property("studio_theme") if app is not None else "light"
    return PALETTES.get(name or "light", PALETTES["light"])["Error"]


def palette_of(name: str) -> QPalette:
    colors = PALETTES[name]
    palette = QPalette()
    for role_name, value in colors.items():
        role = getattr(R, role_name, None)
        if role is not None:
            palette.setColor(role, QColor(value))
    for role in (R.Text, R.ButtonText, R.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(colors["Disabled"]))
    return palette


class StudioStyle(QProxyStyle):
    """Fusion, with the boundaries of buttons, fields, lists, spin boxes, combo boxes and
    check boxes drawn in the theme's ``Outline`` colour: 3:1 against the window and the
    fields (WCAG 1.4.11), where Fusion's own ``window.darker(140)`` gives about 2:1."""

    PRIMITIVES = (QStyle.PrimitiveElement.PE_PanelButtonCommand,
                  QStyle.PrimitiveElement.PE_FrameLineEdit,
                  QStyle.PrimitiveElement.PE_Frame,
                  QStyle.PrimitiveElement.PE_IndicatorCheckBox)
    CONTROLS = (QStyle.ComplexControl.CC_SpinBox, QStyle.ComplexControl.CC_ComboBox)

    def __init__(self, outline: str) -> None:
        super().__init__(QStyleFactory.create("Fusion"))
        self.outline = QColor(outline)

    def _edge(self, painter: QPainter, rect) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(self.outline, 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(QRectF(rect).adjusted(0.5, 0.5, -0.5, -0.5), 2.0, 2.0)
        painter.restore()

    def drawPrimitive(self, element, option, painter, widget=None) -> None:  # noqa: N802
        super().drawPrimitive(element, option, painter, widget)
        if element in self.PRIMITIVES and option.rect.width() > 4:
            if element == QStyle.PrimitiveElement.PE_Frame and \
                    not option.state & QStyle.StateFlag.State_Sunken:
                return  # plain frames (group lines…) are not control boundaries
            self._edge(painter, option.rect)

    def drawComplexControl(self, control, option, painter, widget=None) -> None:  # noqa: N802
        super().drawComplexControl(control, option, painter, widget)
        if control in self.CONTROLS and getattr(option, "frame", True):
            self._edge(painter, option.rect)


def apply_theme(app: QApplication, name: str) -> None:
    name = name if name in PALETTES else "light"
    style = StudioStyle(PALETTES[name]["Outline"])
    app.setStyle(style)
    app.setProperty("studio_style", style)  # kept alive with the application
    app.setPalette(palette_of(name))
    app.setProperty("studio_theme", name)
