"""Writing the Text panel's document to a file (no Qt): .txt, .md and .docx.

Paragraphs are separated by blank lines; a single line break stays a line break inside its
paragraph (in .docx too). Files are written atomically (core/files.py).
"""

from __future__ import annotations

import io
from pathlib import Path

from creative_studio.core import files
from creative_studio.core.errors import BadInput

FORMATS = {".txt": "Plain text", ".md": "Markdown", ".docx": "Word document"}


def paragraphs(text: str) -> list[list[str]]:
    """The document's paragraphs, each a list of its lines (blank lines separate them)."""
    found, current = [], []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip():
            current.append(line)
        elif current:
            found.append(current)
            current = []
    if current:
        found.append(current)
    return found


def docx_bytes(text: str, title: str = "") -> bytes:
    from docx import Document

    document = Document()
    if title:
        document.core_properties.title = title
    document.core_properties.comments = "Written with Creative Studio"
    for lines in paragraphs(text):
        run = document.add_paragraph().add_run(lines[0])
        for line in lines[1:]:
            run.add_break()
            run.add_text(line)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def write_document(text: str, path: Path) -> Path:
    """Write ``text`` to ``path`` in the format its suffix names; BadInput for others."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise BadInput(f"Export the document as {', '.join(FORMATS)} (not '{suffix}').")
    if suffix == ".docx":
        files.atomic_write(path, docx_bytes(text, path.stem))
    else:
        body = text.replace("\r\n", "\n")
        files.atomic_write(path, body if body.endswith("\n") or not body else body + "\n")
    return path
