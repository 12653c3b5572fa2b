"""The Image panel's editing canvas: the source picture, fitted to the widget, with a mask
painted over it (brush and eraser; the mask is kept at the picture's own size, so the PNG it
gives has the picture's size as the generator requires). Outpaint shows the picture inside
the grown canvas it will fill."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

MASK_TINT = QColor(255, 40, 80, 130)  # painted areas: what the model redraws
UNDO_STEPS = 40  # strokes, clears and inverts that Undo can take back


class MaskCanvas(QWidget):
    """Shows a picture; when ``painting`` is on, the left button paints the mask (the eraser
    clears it; the right button always clears). ``changed`` is emitted after each stroke."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.picture = QImage()
        self.mask = QImage()
        self.painting = False
        self.erasing = False
        self.brush = 24  # px of the picture
        self.grow = (0, 0, 0, 0)  # outpaint: left, top, right, bottom px around the picture
        self._last: QPointF | None = None
        self._erase_stroke = False
        self._undo: list[QImage] = []  # the mask before each change, newest last
        self._hover: QPointF | None = None
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # Ctrl+Z after a stroke
        self.setMinimumSize(240, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName("Picture to edit (paint the mask here)")

    # -- content -------------------------------------------------------------------------------
    def set_picture(self, data: bytes) -> bool:
        """Show a picture (PNG/JPEG… bytes); a new picture starts with an empty mask unless
        the old one has its size. False when the bytes are not a picture."""
        image = QImage.fromData(data)
        if image.isNull():
            return False
        self.picture = image.convertToFormat(QImage.Format.Format_RGB32)
        if self.mask.size() != image.size():  # painted = opaque, the rest transparent
            self.mask = QImage(image.size(), QImage.Format.Format_ARGB32)
            self.mask.fill(0)
            self._undo.clear()
        self.update()
        return True

    def clear_picture(self) -> None:
        self.picture = QImage()
        self.mask = QImage()
        self.update()

    def has_picture(self) -> bool:
        return not self.picture.isNull()

    def _remember(self) -> None:
        self._undo.append(self.mask.copy())
        del self._undo[:-UNDO_STEPS]

    def can_undo(self) -> bool:
        return bool(self._undo)

    def undo(self) -> None:
        """Take back the last stroke, clear or invert of the mask."""
        if self._undo:
            self.mask = self._undo.pop()
            self.update()
            self.changed.emit()

    def clear_mask(self) -> None:
        if not self.mask.isNull():
            self._remember()
            self.mask.fill(0)
            self.update()
            self.changed.emit()

    def invert_mask(self) -> None:
        if not self.mask.isNull():
            self._remember()
            self.mask.invertPixels(QImage.InvertMode.InvertRgba)
            self.update()
            self.changed.emit()

    def _coverage(self) -> QImage:
        """The mask's coverage (its alpha) as a greyscale picture: white = redraw."""
        alpha = self.mask.convertToFormat(QImage.Format.Format_Alpha8)
        return QImage(alpha.constBits(), alpha.width(), alpha.height(), alpha.bytesPerLine(),
                      QImage.Format.Format_Grayscale8).copy()

    def mask_empty(self) -> bool:
        if self.mask.isNull():
            return True
        coverage = self._coverage()
        line = coverage.bytesPerLine()
        bits = bytes(coverage.constBits())
        return not any(any(bits[row * line:row * line + coverage.width()])
                       for row in range(coverage.height()))

    def mask_png(self) -> bytes:
        """The mask as a greyscale PNG of the picture's size: white = redraw."""
        from PySide6.QtCore import QBuffer, QIODevice

        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        self._coverage().save(buffer, "PNG")
        return bytes(buffer.data())

    def set_mask_png(self, data: bytes) -> bool:
        """Restore a mask (a recipe's, white = redraw) when it has the picture's size."""
        image = QImage.fromData(data)
        if image.isNull() or image.size() != self.picture.size():
            return False
        grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
        alpha = QImage(grey.constBits(), grey.width(), grey.height(), grey.bytesPerLine(),
                       QImage.Format.Format_Alpha8).copy()
        white = QImage(grey.size(), QImage.Format.Format_ARGB32)
        white.fill(QColor(255, 255, 255))
        painter = QPainter(white)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationIn)
        painter.drawImage(0, 0, alpha)
        painter.end()
        self.mask = white
        self.update()
        return True

    def set_grow(self, left: int, top: int, right: int, bottom: int) -> None:
        self.grow = (left, top, right, bottom)
        self.update()

    # -- geometry -----------------------------------------------------------------------------
    def _frame(self) -> tuple[QRectF, float]:
        """Where the picture is drawn (widget px) and its scale, the outpaint margin fitted
        too."""
        left, top, right, bottom = self.grow
        width = self.picture.width() + left + right
        height = self.picture.height() + top + bottom
        scale = min((self.width() - 8) / max(1, width), (self.height() - 8) / max(1, height))
        scale = max(scale, 1e-3)
        x0 = (self.width() - width * scale) / 2 + left * scale
        y0 = (self.height() - height * scale) / 2 + top * scale
        return QRectF(x0, y0, self.picture.width() * scale,
                      self.picture.height() * scale), scale

    def to_picture(self, pos: QPointF) -> QPointF:
        frame, scale = self._frame()
        return QPointF((pos.x() - frame.x()) / scale, (pos.y() - frame.y()) / scale)

    # -- painting -----------------------------------------------------------------------------
    def _stroke(self, start: QPointF, end: QPointF, erase: bool) -> None:
        painter = QPainter(self.mask)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if erase:  # cleared back to transparent
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Clear)
        colour = QColor(255, 255, 255)
        painter.setPen(QPen(colour, self.brush, Qt.PenStyle.SolidLine,
                            Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        if start == end:
            painter.setBrush(colour)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawEllipse(start, self.brush / 2, self.brush / 2)
        else:
            painter.drawLine(start, end)
        painter.end()
        self.update()

    def paint_at(self, start: QPointF, end: QPointF | None = None,
                 erase: bool | None = None) -> None:
        """Paint (or erase) a stroke between two points of the picture."""
        if self.mask.isNull():
            return
        self._remember()
        self._stroke(start, end or start, self.erasing if erase is None else erase)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if not self.painting or self.mask.isNull():
            return
        erase = self.erasing or event.button() == Qt.MouseButton.RightButton
        self._erase_stroke = erase
        self._remember()  # one undo step per stroke
        self._last = self.to_picture(event.position())
        self._stroke(self._last, self._last, erase)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._hover = event.position()
        if self._last is not None:
            point = self.to_picture(event.position())
            self._stroke(self._last, point, self._erase_stroke)
            self._last = point
        elif self.painting:
            self.update()  # the brush outline follows the pointer

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._last is not None:
            self._last = None
            self.changed.emit()

    def event(self, event) -> bool:
        """Ctrl+Z on the canvas takes back a stroke (before the window's own Undo)."""
        from PySide6.QtCore import QEvent
        from PySide6.QtGui import QKeySequence

        if event.type() in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) and \
                event.matches(QKeySequence.StandardKey.Undo) and self.painting:
            event.accept()
            if event.type() == QEvent.Type.KeyPress:
                self.undo()
            return True
        return super().event(event)

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._hover = None
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().base())
        if self.picture.isNull():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             "Drop a picture here, or choose one with Picture.")
            return
        frame, scale = self._frame()
        if any(self.grow):  # the outpaint canvas: what will be drawn, hatched
            left, top, right, bottom = self.grow
            grown = frame.adjusted(-left * scale, -top * scale, right * scale, bottom * scale)
            painter.fillRect(grown, QColor(MASK_TINT.red(), MASK_TINT.green(),
                                           MASK_TINT.blue(), 60))
            painter.fillRect(grown, Qt.BrushStyle.BDiagPattern)
        smooth = scale < 1
        if smooth:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(frame, self.picture)
        if self.painting and not self.mask.isNull():
            tint = QImage(self.mask.size(), QImage.Format.Format_ARGB32_Premultiplied)
            tint.fill(MASK_TINT)
            alpha = QPainter(tint)  # the mask as the tint's alpha
            alpha.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationIn)
            alpha.drawImage(0, 0, self.mask)
            alpha.end()
            painter.drawImage(frame, tint)
            if self._hover is not None:
                painter.setPen(QPen(self.palette().text().color(), 1, Qt.PenStyle.DashLine))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawEllipse(self._hover, self.brush * scale / 2, self.brush * scale / 2)
