"""Decoding for writers (no Qt, no llama import): banned phrases and lists of N items.

- **Banned phrases** ("a testament to", "shivers down"): the llama.cpp engine watches the
  text as it is written; when a phrase appears, it goes back to the token where the phrase
  began, forbids that token there and writes on (the backtracking of antislop samplers) —
  so the phrase is avoided as a whole, not by banning its word pieces everywhere.
- **A list of exactly N items**: a llama.cpp grammar that allows only N numbered lines, so
  "five titles" gives five; a server is sent a JSON schema of N strings (OpenAI's
  ``json_schema`` response format, else llama.cpp server's and vLLM's ``json_object`` with a
  schema) and its JSON becomes the same numbered list.
"""

from __future__ import annotations

import json
from typing import Any

MAX_PHRASES = 200
MAX_BACKTRACKS = 64  # per reply: then the text is kept as written and the note says so
ITEM_CHARS = 100  # an item is one line of at most this many characters


def banned_list(text: str) -> list[str]:
    """The phrases of a "one per line" list: trimmed, lowercase, empty lines left out."""
    phrases = []
    for line in str(text or "").splitlines():
        phrase = " ".join(line.split()).lower()
        if phrase and phrase not in phrases:
            phrases.append(phrase)
    return phrases[:MAX_PHRASES]


def find_banned(text: str, phrases: list[str], start: int = 0) -> tuple[int, str] | None:
    """The first banned phrase in ``text`` at or after ``start`` (case and runs of spaces
    ignored): (its character index, the phrase), or None."""
    if not phrases:
        return None
    lowered = text.lower()
    best = None
    for phrase in phrases:
        at = _find_words(lowered, phrase, start)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, phrase)
    return best


def _find_words(text: str, phrase: str, start: int) -> int:
    """Where ``phrase`` stands in ``text`` with any whitespace between its words."""
    words = phrase.split()
    at = text.find(words[0], start)
    while at >= 0:
        pos = at + len(words[0])
        for word in words[1:]:
            rest = text[pos:]
            stripped = rest.lstrip()
            if len(stripped) == len(rest) or not stripped.startswith(word):
                break
            pos += len(rest) - len(stripped) + len(word)
        else:
            return at
        at = text.find(words[0], at + 1)
    return -1


def token_index(char: int, ends: list[int]) -> int:
    """The index of the token whose text holds character ``char`` (``ends``: the text's
    length after each token)."""
    for index, end in enumerate(ends):
        if end > char:
            return index
    return len(ends) - 1


def list_grammar(items: int) -> str:
    """A GBNF grammar: exactly ``items`` numbered lines ("1. …", each one line of at most
    ITEM_CHARS characters)."""
    lines = " ".join(f"item{i}" for i in range(1, items + 1))
    rules = [f"root ::= {lines}"]
    for i in range(1, items + 1):
        rules.append(f'item{i} ::= "{i}. " [^\\n]{{1,{ITEM_CHARS}}} "\\n"')
    return "\n".join(rules) + "\n"


def list_instruction(items: int, as_json: bool = False) -> str:
    if as_json:  # a server's structured output: the schema's shape, said in words too
        return (f"\n\nAnswer with a JSON object {{\"items\": [...]}} holding exactly "
                f"{items} short items (one line each), and nothing else.")
    return (f"\n\nAnswer with a numbered list of exactly {items} items, one per line, "
            "and nothing else.")


def paragraph_end(text: str) -> int:
    """Where the first paragraph of a continuation ends: the first line break after some
    text (-1: not yet)."""
    written = len(text) - len(text.lstrip())
    return text.find("\n", written) if text.strip() else -1


def list_schema(items: int) -> dict[str, Any]:
    """The JSON schema of a list of exactly ``items`` short strings."""
    return {"type": "object", "required": ["items"], "additionalProperties": False,
            "properties": {"items": {"type": "array", "minItems": items, "maxItems": items,
                                     "items": {"type": "string", "maxLength": ITEM_CHARS}}}}


def list_formats(items: int) -> list[dict[str, Any]]:
    """The ``response_format`` values to try, in order (the OpenAI form first)."""
    schema = list_schema(items)
    return [{"type": "json_schema", "json_schema": {"name": "items", "strict": True,
                                                    "schema": schema}},
            {"type": "json_object", "schema": schema}]


def list_from_json(text: str, items: int) -> tuple[str, str]:
    """A server's JSON list as the numbered list llama.cpp's grammar writes, and what went
    wrong ("" = exactly ``items`` items). Text that is no such JSON is kept as it is."""
    try:
        data = json.loads(text, strict=False)  # line breaks inside strings are read
    except ValueError:
        return text, "the server did not answer with the list's JSON (it may not support " \
                     "structured output): its reply is kept as written"
    found = data.get("items") if isinstance(data, dict) else data
    if not isinstance(found, list):
        return text, "the server's JSON holds no list: its reply is kept as written"
    lines = [" ".join(str(item).split()) for item in found if str(item).strip()]
    numbered = "\n".join(f"{index + 1}. {line}" for index, line in enumerate(lines))
    if len(lines) != items:
        return numbered, f"the server gave {len(lines)} items, not {items}"
    return numbered, ""
