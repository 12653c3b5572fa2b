"""A writer's task bench: instructions a program can check, the same prompts for every model.

    .venv/bin/python bench/writer_tasks.py [--gguf NAME=FILE ...] [--seeds 1] [--json OUT]

Without ``--gguf`` it runs the embedded model alone. Each model is opened by the studio's
own llama.cpp engine (plugins/text/llama_engine.py) with the Text panel's defaults
(Balanced: temperature 0.7, top-p 0.9, repetition penalty 1.1, Max tokens 200, List items
off, no banned phrases): what a writer gets on pressing Generate, Continue or Rewrite.

The 36 tasks (``TASKS``) are checked by a program, never by eye:

- lists: exactly N distinct lines, nothing else (titles, names, ideas);
- forms: a haiku's three short lines, a given number of sentences or paragraphs, a word
  limit, a given first or last word, words that must appear, dialogue lines "Name: …";
- rewrites: not the same words, not commentary about the text (the studio's own check,
  ``rewrite_problem``), the subject kept, a sane length;
- continuations: written on (not the given sentence again), the person kept (no "I"/"my"
  outside quotes after a third-person text, and back), the tense kept (past-tense verbs
  outnumber present ones after a past-tense text).

Printed per model: tasks passed / tasks, seconds in all and per task, tokens/s; then a table
of which task each model failed. Threads: the studio's policy (the machine's free cores).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

Check = Callable[[str], str]  # the text → "" when it passes, else why not


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines() if line.strip()]


def _strip_marker(line: str) -> str:
    return re.sub(r"^\s*(?:\d+[.)]|[-*•])\s*", "", line).strip().strip('"*').strip()


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z']+", text)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])[\"”’)]*\s+", text.strip()) if _words(s)]


def _outside_quotes(text: str) -> str:
    return re.sub(r"[\"“][^\"”]*[\"”]", " ", text)


def n_lines(n: int) -> Check:
    def check(text: str) -> str:
        items = [_strip_marker(line) for line in _lines(text)]
        if len(items) != n:
            return f"{len(items)} lines, not {n}"
        if len({item.lower() for item in items}) != n:
            return "a line repeated"
        return ""
    return check


def haiku(text: str) -> str:
    lines = _lines(text)
    if len(lines) != 3:
        return f"{len(lines)} lines, not 3"
    if any(len(_words(line)) > 9 for line in lines):
        return "a line too long for a haiku"
    return ""


def n_sentences(n: int) -> Check:
    def check(text: str) -> str:
        found = len(_sentences(text))
        return "" if found == n else f"{found} sentences, not {n}"
    return check


def n_paragraphs(n: int) -> Check:
    def check(text: str) -> str:
        found = len([p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()])
        return "" if found == n else f"{found} paragraphs, not {n}"
    return check


def words_between(low: int, high: int) -> Check:
    def check(text: str) -> str:
        found = len(_words(text))
        return "" if low <= found <= high else f"{found} words, not {low}–{high}"
    return check


def contains(*needed: str) -> Check:
    def check(text: str) -> str:
        missing = [w for w in needed if w.lower() not in text.lower()]
        return f"no {', '.join(missing)}" if missing else ""
    return check


def starts_with(word: str) -> Check:
    def check(text: str) -> str:
        first = _words(text)[:1]
        return "" if first and first[0].lower() == word.lower() else "starts otherwise"
    return check


def ends_with_question(text: str) -> str:
    return "" if text.strip().rstrip('"”’*').endswith("?") else "not a question at the end"


def dialogue(n: int) -> Check:
    def check(text: str) -> str:
        lines = _lines(text)
        speaking = [line for line in lines if re.match(r"^\**[A-Z][\w .']{0,20}\**:", line)]
        if len(speaking) != n or len(lines) != n:
            return f"{len(speaking)} of {len(lines)} lines are 'Name: …', not {n}"
        return ""
    return check


def single_word(text: str) -> str:
    found = _words(text)
    return "" if len(found) == 1 else f"{len(found)} words"


def both(*checks: Check) -> Check:
    def check(text: str) -> str:
        return next((why for why in (c(text) for c in checks) if why), "")
    return check


def rewrite(original: str, subject: str) -> Check:
    from plugins.text.generator import rewrite_problem

    def check(text: str) -> str:
        problem = rewrite_problem(original, text)
        if problem:
            return problem
        if subject.lower() not in text.lower():
            return f"the subject ({subject}) is gone"
        ratio = len(_words(text)) / max(1, len(_words(original)))
        return "" if 0.5 <= ratio <= 3.0 else f"{ratio:.1f}× the length"
    return check


FIRST = re.compile(r"\b(?:I|me|my|mine|myself|we|our|us)\b")
THIRD = re.compile(r"\b(?:he|she|him|her|his|they|them|their)\b", re.IGNORECASE)
PAST = re.compile(r"\b(?:was|were|had|did|said|went|came|saw|felt|knew|took|made|\w{3,}ed)\b",
                  re.IGNORECASE)
PRESENT = re.compile(r"\b(?:is|are|am|has|does|says|goes|comes|sees|feels|knows|takes)\b",
                     re.IGNORECASE)


def continuation(given: str, person: str) -> Check:
    last = _sentences(given)[-1]

    def check(text: str) -> str:
        if len(_words(text)) < 8:
            return "hardly written on"
        if last.lower()[:40] in text.lower():
            return "repeats the given sentence"
        plain = _outside_quotes(text)
        if person == "third" and FIRST.search(plain):
            return f"switched to first person ({FIRST.search(plain).group()})"
        if person == "first" and not FIRST.search(plain):
            return "left the first person"
        past, present = len(PAST.findall(plain)), len(PRESENT.findall(plain))
        return "" if past >= present else f"tense: {past} past vs {present} present verbs"
    return check


@dataclass
class Task:
    id: str
    task: str  # generate | continue | rewrite
    text: str  # the instruction (generate, rewrite) or the document (continue)
    check: Check
    selection: str = ""


STORY_3RD = ("The rain had not stopped for three days when Elena finally opened the letter. "
             "Her hands shook as she unfolded the yellowed page, and the smell of her "
             "grandmother's lavender rose from it.")
STORY_1ST = ("I had never seen the harbour so quiet. The fishing boats sat in a row like "
             "sleeping dogs, and I walked along the pier counting them, the way my father "
             "used to.")
STORY_WOLF = ("The old wolf watched the village from the ridge. For eleven winters he had "
              "kept away from the fires of men, but this winter the forest was empty.")
STORY_SHIP = ("Captain Reyes stood at the bow as the ship slid into the fog. Somewhere "
              "ahead lay the island that no chart agreed on, and the crew had stopped "
              "singing an hour ago.")
STORY_SHOP = ("Nobody in Millbrook remembered when the clock shop had opened. Mr. Abernathy "
              "polished the same brass pendulum every morning, and every morning it showed "
              "a different time.")

REWRITES = [
    ("The dog ran across the field.", "dog"),
    ("The old house was very dark and scary at night.", "house"),
    ("She was sad because her friend moved away.", "friend"),
    ("The city was busy in the morning.", "city"),
    ("He ate the apple quickly.", "apple"),
]

TASKS: list[Task] = [
    Task("titles-5", "generate", "Give five titles for a cozy fantasy novel about a baker "
         "witch. One title per line, nothing else.", n_lines(5)),
    Task("titles-3", "generate", "Suggest three titles for a thriller set on a night train. "
         "Write only the titles, one per line.", n_lines(3)),
    Task("names-4", "generate", "List four names for a dragon character, one per line, "
         "with no explanations.", n_lines(4)),
    Task("ideas-5", "generate", "Write five short story ideas about time travel, one per "
         "line, nothing else.", n_lines(5)),
    Task("places-3", "generate", "Name three towns for a fantasy map. Write only the names, "
         "one per line.", n_lines(3)),
    Task("haiku-autumn", "generate", "Write a haiku about autumn leaves. Only the haiku.",
         haiku),
    Task("haiku-sea", "generate", "Write a haiku about the sea at night. Only the haiku.",
         haiku),
    Task("haiku-city", "generate", "Write a haiku about a city waking up. Only the haiku.",
         haiku),
    Task("one-sentence", "generate", "Describe a thunderstorm in exactly one sentence.",
         n_sentences(1)),
    Task("two-sentences", "generate", "Describe a busy market in exactly two sentences.",
         n_sentences(2)),
    Task("three-sentences", "generate", "Write a three-sentence horror story.",
         n_sentences(3)),
    Task("two-paragraphs", "generate", "Write two short paragraphs about a lighthouse "
         "keeper. Separate the paragraphs with a blank line.", n_paragraphs(2)),
    Task("under-30", "generate", "Describe a forest at dawn in fewer than 30 words.",
         words_between(3, 29)),
    Task("about-50", "generate", "Write a 50-word story about a lost key.",
         words_between(35, 65)),
    Task("words-in", "generate", "Write one sentence that uses the words lantern and river.",
         both(contains("lantern", "river"), n_sentences(1))),
    Task("words-in-2", "generate", "Write a short paragraph about a market that mentions "
         "cinnamon, a violin and a red umbrella.", contains("cinnamon", "violin", "umbrella")),
    Task("start-once", "generate", "Write a short fairy tale opening that starts with the "
         "word 'Once'.", starts_with("Once")),
    Task("end-question", "generate", "Write a short paragraph about a mysterious door that "
         "ends with a question.", ends_with_question),
    Task("dialogue-4", "generate", "Write a dialogue of exactly four lines between Anna and "
         "Ben about a broken vase. Format each line as 'Name: words'.", dialogue(4)),
    Task("one-word", "generate", "In one word only, what colour is a ripe banana?",
         single_word),
    Task("summary", "generate", "Summarise the story of Cinderella in one sentence.",
         n_sentences(1)),
    *[Task(f"rewrite-{i + 1}", "rewrite", "Rewrite this sentence so it is more vivid.",
           rewrite(sentence, subject), selection=sentence)
      for i, (sentence, subject) in enumerate(REWRITES)],
    Task("continue-3rd", "continue", STORY_3RD, continuation(STORY_3RD, "third")),
    Task("continue-1st", "continue", STORY_1ST, continuation(STORY_1ST, "first")),
    Task("continue-wolf", "continue", STORY_WOLF, continuation(STORY_WOLF, "third")),
    Task("continue-ship", "continue", STORY_SHIP, continuation(STORY_SHIP, "third")),
    Task("continue-shop", "continue", STORY_SHOP, continuation(STORY_SHOP, "third")),
    Task("reply-3rd", "generate", "Continue this story with one more paragraph in the same "
         "voice.\n\n" + STORY_3RD, continuation(STORY_3RD, "third")),
    Task("reply-1st", "generate", "Continue this story with one more paragraph in the same "
         "voice.\n\n" + STORY_1ST, continuation(STORY_1ST, "first")),
    Task("reply-wolf", "generate", "Continue this story with one more paragraph in the same "
         "voice.\n\n" + STORY_WOLF, continuation(STORY_WOLF, "third")),
    Task("reply-ship", "generate", "Continue this story with one more paragraph in the same "
         "voice.\n\n" + STORY_SHIP, continuation(STORY_SHIP, "third")),
]


def request_of(task: Task, seed: int):
    from creative_studio.core.jobs import Request

    if task.task == "continue":
        return Request("text", "continue", params={"context": task.text,
                                                   "max_tokens": 120}, seed=seed)
    if task.task == "rewrite":
        return Request("text", "rewrite", task.text, params={"selection": task.selection},
                       seed=seed)
    return Request("text", "generate", task.text, seed=seed)


def run_model(name: str, ref: str, seeds: list[int], out: dict) -> None:
    from creative_studio.core.progress import Progress
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import prepare_request
    from plugins.text.llama_engine import LlamaEngine

    registry = PluginRegistry.discover(entry_points=False)
    engine = LlamaEngine(registry.resolve_model("text", ref))
    rows = []
    started = time.perf_counter()
    tokens = 0
    for task in TASKS:
        for seed in seeds:
            request = request_of(task, seed)
            prepare_request(registry, request)
            t0 = time.perf_counter()
            result = engine.generate(request, Progress())
            text = result.assets[0].data.decode("utf-8")
            why = task.check(text)
            tokens += int(result.metadata["tokens"])
            rows.append({"task": task.id, "seed": seed, "ok": not why, "why": why,
                         "seconds": round(time.perf_counter() - t0, 2), "text": text})
            print(f"  {name:>14} {task.id:<16} {'ok ' if not why else 'NO '} {why}",
                  flush=True)
    elapsed = time.perf_counter() - started
    engine.close()
    passed = sum(r["ok"] for r in rows)
    out[name] = {"passed": passed, "tasks": len(rows), "seconds": round(elapsed, 1),
                 "seconds_per_task": round(elapsed / len(rows), 2),
                 "tokens_per_s": round(tokens / elapsed, 1), "threads": engine.threads,
                 "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gguf", action="append", default=[], metavar="NAME=FILE")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    models = [("SmolLM2-135M", "embedded:smollm2-135m-instruct")] + [tuple(item.split("=", 1)) for item in args.gguf]
    seeds = list(range(1, args.seeds + 1))
    print(f"{len(TASKS)} tasks × {len(seeds)} seed(s)")
    out: dict = {}
    for name, ref in models:
        run_model(name, ref, seeds, out)
    print(f"\n{'model':<16} {'passed':>10} {'seconds':>9} {'s/task':>7} {'tok/s':>6}")
    for name, row in out.items():
        print(f"{name:<16} {row['passed']:>4}/{row['tasks']:<5} {row['seconds']:>9} "
              f"{row['seconds_per_task']:>7} {row['tokens_per_s']:>6}")
    print("\nfailed tasks:")
    for task in TASKS:
        failed = [name for name, row in out.items()
                  if any(r["task"] == task.id and not r["ok"] for r in row["rows"])]
        print(f"  {task.id:<16} {', '.join(failed) or '-'}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
