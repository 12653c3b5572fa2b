"""Story notes and the prompt's parts (no Qt, no torch).

A project keeps its **story** (state key ``story``; the Text panel's Notes tab and
``creative-studio notes`` edit it): entries about characters, places, facts and style, each
with keywords, some pinned; and an **author's note** with its depth. Every Text job gets the
story in its ``story`` parameter (the recipe keeps it, so a Re-run builds the same prompt),
and the prompt is assembled here, the same way for every engine:

- an entry **joins** when one of its keywords (its title when it has none) appears, as a
  whole word, in the instruction or in the last ``SCAN_CHARS`` characters of the document
  before the cursor; a **pinned** entry always joins. Why each joined is recorded.
- the **notes block** goes before the instruction of a reply or rewrite, and at the top of
  a raw continuation, in brackets (KoboldCpp's Memory / World Info);
- the **author's note** goes into the document excerpt ``depth`` paragraphs before its end
  (1: before the last paragraph), where it steers the next words most;
- the document is fitted to the model's context afterwards (plugins/text/context.py: the
  instruction, the notes and the author's note stay; the start of the document is left out
  first, and that is said).

``parts(request)`` lists what the model saw, part by part, for the "What the model saw" view;
the engines add each part's token count (``counted``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from creative_studio.core.errors import BadInput
from creative_studio.core.jobs import Request

STATE_KEY = "story"  # where a project keeps its story (the ``story`` parameter's ``project``)
SCAN_CHARS = 2000  # how far before the cursor a keyword makes its entry join
MAX_NOTES = 500
MAX_KEYS = 24
MAX_NOTE_CHARS = 20_000
DEFAULT_DEPTH = 2
KINDS = ("character", "place", "fact", "style", "other")


@dataclass
class Note:
    title: str
    text: str
    keys: list[str] = field(default_factory=list)  # none: the title is the keyword
    pinned: bool = False
    kind: str = "other"

    def keywords(self) -> list[str]:
        return [k for k in (self.keys or [self.title]) if k.strip()]

    def why(self, instruction: str, near: str) -> str:
        """Why this entry joins the prompt ("" = it does not)."""
        if self.pinned:
            return "pinned"
        for key in self.keywords():
            pattern = re.compile(rf"(?<!\w){re.escape(key.strip())}(?!\w)", re.IGNORECASE)
            if pattern.search(near):
                return f"“{key.strip()}” in the text near the cursor"
            if pattern.search(instruction):
                return f"“{key.strip()}” in the instruction"
        return ""


@dataclass
class Story:
    notes: list[Note] = field(default_factory=list)
    author_note: str = ""
    depth: int = DEFAULT_DEPTH

    def to_dict(self) -> dict[str, Any]:
        return {"notes": [asdict(n) for n in self.notes], "author_note": self.author_note,
                "depth": self.depth}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @property
    def empty(self) -> bool:
        return not self.notes and not self.author_note.strip()

    @classmethod
    def from_value(cls, value: Any) -> Story:
        """A story from a project's state or a request's ``story`` (JSON text or a dict):
        untrusted, so anything malformed is left out, never raised; sizes are bounded."""
        if isinstance(value, str):
            if not value.strip():
                return cls()
            try:
                value = json.loads(value)
            except ValueError:
                return cls()
        if not isinstance(value, dict):
            return cls()
        notes = []
        entries = value.get("notes")
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or len(notes) >= MAX_NOTES:
                continue
            title = str(entry.get("title", "")).strip()[:200]
            text = str(entry.get("text", "")).strip()[:MAX_NOTE_CHARS]
            if not title or not text:
                continue
            keys = entry.get("keys") or []
            keys = [str(k).strip()[:100] for k in (keys if isinstance(keys, list) else [])
                    if str(k).strip()][:MAX_KEYS]
            kind = str(entry.get("kind", "other"))
            notes.append(Note(title, text, keys, bool(entry.get("pinned", False)),
                              kind if kind in KINDS else "other"))
        try:
            depth = max(1, min(50, int(value.get("depth", DEFAULT_DEPTH))))
        except (TypeError, ValueError):
            depth = DEFAULT_DEPTH
        return cls(notes, str(value.get("author_note", "") or "")[:MAX_NOTE_CHARS], depth)

    # -- editing (CLI and panel) ------------------------------------------------------------
    def add(self, note: Note) -> None:
        if not note.title.strip() or not note.text.strip():
            raise BadInput("A note needs a title and a text.")
        if any(n.title.lower() == note.title.strip().lower() for n in self.notes):
            raise BadInput(f"There is a note called “{note.title}” already: remove it first "
                           "or choose another title.")
        if len(self.notes) >= MAX_NOTES:
            raise BadInput(f"A story keeps at most {MAX_NOTES} notes.")
        self.notes.append(note)

    def remove(self, title: str) -> Note:
        for note in self.notes:
            if note.title.lower() == title.strip().lower():
                self.notes.remove(note)
                return note
        raise BadInput(f"No note is called “{title}”.")

    def chosen(self, instruction: str, document: str) -> list[tuple[Note, str]]:
        """The entries that join a prompt, in the story's order, with why."""
        near = document[-SCAN_CHARS:]
        found = [(note, note.why(instruction, near)) for note in self.notes]
        return [(note, why) for note, why in found if why]


def _story(request: Request) -> Story:
    return Story.from_value(request.params.get("story", ""))


def document_key(request: Request) -> str:
    return "context" if request.task in ("generate", "continue") else ""


def resolve(request: Request) -> Request:
    """The request with the story's choice made (on the whole document, before it is fitted
    to the context): the joined notes in ``notes_chosen`` (title, text, why)."""
    story = _story(request)
    copy = Request.from_dict(request.to_dict())
    document = str(request.params.get("context", "")) if document_key(request) else \
        str(request.params.get("selection", ""))
    copy.params["notes_chosen"] = [
        {"title": note.title, "text": note.text, "why": why}
        for note, why in story.chosen(request.prompt, document)]
    return copy


def notes_block(request: Request, raw: bool) -> str:
    chosen = request.params.get("notes_chosen") or []
    if not chosen:
        return ""
    lines = [f"{n['title']}: {n['text']}" for n in chosen]
    if raw:
        return "[" + "\n".join(lines) + "]\n\n"
    return "Story notes (keep to these facts):\n" + "\n".join(f"- {line}" for line in lines)


def with_author_note(document: str, request: Request) -> str:
    """The document with the author's note ``depth`` paragraphs before its end."""
    story = _story(request)
    note = story.author_note.strip()
    if not note or not document.strip():
        return document
    marker = f"[Author's note: {note}]"
    # paragraph starts: the text's start and every line that follows a line break
    starts = [0] + [m.end() for m in re.finditer(r"\n+", document) if m.end() < len(document)]
    at = starts[max(0, len(starts) - story.depth)]
    return document[:at] + marker + "\n" + document[at:]


def continuation(request: Request, max_chars: int | None = None) -> str:
    """The raw text a continuation starts from: notes block, then the document (its last
    ``max_chars`` characters, where given) with the author's note."""
    document = str(request.params.get("context", ""))
    if max_chars is not None:
        document = document[-max_chars:]
    return notes_block(request, raw=True) + with_author_note(document, request)


def parts(request: Request, left_out: int = 0) -> list[dict[str, str]]:
    """What the model saw, part by part: (part, text, why), in prompt order; ``left_out``:
    the words of the document's start that did not fit."""
    p = request.params
    found: list[dict[str, str]] = []
    if request.task != "continue" and str(p.get("system", "")).strip():
        found.append({"part": "System prompt", "text": str(p["system"]).strip(), "why": ""})
    for note in p.get("notes_chosen") or []:
        found.append({"part": f"Note: {note['title']}", "text": note["text"],
                      "why": note["why"]})
    if request.task == "rewrite":
        found.append({"part": "Instruction", "text": request.prompt.strip(), "why": ""})
        found.append({"part": "Selection", "text": str(p.get("selection", "")), "why": ""})
        return found
    if request.task == "generate":
        found.append({"part": "Instruction", "text": request.prompt.strip(), "why": ""})
    document = str(p.get("context", ""))
    if document.strip():
        found.append({"part": "Document" + (" (its end)" if left_out else ""),
                      "text": document,
                      "why": f"the first {left_out:,} words left out to fit" if left_out
                      else "the text before the cursor"})
    story = _story(request)
    if story.author_note.strip() and document.strip():
        found.append({"part": "Author's note", "text": story.author_note.strip(),
                      "why": f"{story.depth} paragraph{'s' if story.depth != 1 else ''} "
                             "before the end of the document"})
    return found


def counted(request: Request, count: Callable[[str], int], total: int, left_out: int = 0,
            estimated: bool = False) -> list[dict[str, Any]]:
    """The parts with their tokens (``count`` of each text); what the chat format or the
    brackets add is the rest of ``total``."""
    found = [dict(part, tokens=count(part["text"])) for part in parts(request, left_out)]
    for part in found:  # the document is in the recipe already: only how much of its end
        if part["part"].startswith("Document"):
            part["chars"], part["text"] = len(part["text"]), ""
    rest = total - sum(part["tokens"] for part in found)
    if rest > 0:
        found.append({"part": "Chat format, brackets and labels", "text": "", "why": "", "tokens": rest})
    if estimated:
        for part in found:
            part["estimated"] = True
    return found


def filled(parts: list[dict[str, Any]], request: Request) -> list[dict[str, Any]]:
    """Stored parts with the document excerpt's text put back (its last ``chars``
    characters of the recipe's document)."""
    document = str(request.params.get("context", ""))
    out = []
    for part in parts:
        part = dict(part)
        chars = part.get("chars")
        if isinstance(chars, int) and not isinstance(chars, bool) and chars > 0:
            part["text"] = document[-chars:]
        out.append(part)
    return out
