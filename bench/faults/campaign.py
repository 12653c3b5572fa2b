"""A seeded fault campaign against every reader of untrusted bytes, and a kill harness.

    .venv/bin/python bench/faults/campaign.py [--seed 1] [--projects 300] [--pictures 200]
        [--midis 200] [--pngs 100] [--kills 100] [--schemas 1000] [--settings 60]

Generators (``mutations.py``) damage real files made here: projects (byte flips, truncation,
zeroed pages, wrong application id / version, stale and foreign journals, hostile schemas,
wrong column types, deep JSON, hostile ids, bad UTF-8, flipped output bytes; one character
of the schema text), preferences files (flips, truncation, depth, huge numbers, wrong types,
junk servers), pictures, MIDI files and PNG recipes (hostile chunks, zTXt bombs). Each trial runs the reader a user would
run (open + list + export every item + check; Upscale's picture import; Music's Continue
with the real model; Image's Open PNG…) and is classified:

- ``read``: read correctly (a damaged output, if any, reported as damaged);
- ``refused``: refused with a plain message (a StudioError), the original untouched;
- ``traceback``: any other exception (a crash in the GUI or CLI);
- ``hang``: no answer within 20 s;
- ``modified``: the original file (or its journal) changed although it was refused or only read;
- ``silent``: an output exported without complaint whose bytes differ from what was made
  (every flipped output must be reported damaged), or a recipe (prompt, seed, title,
  parents) read as another without the item marked damaged;
- kills: ``corrupt`` (the project no longer opens), ``lost`` (an item the writer had reported
  committed is missing or differs).

Prints a table; exits 1 when any bad column is not 0. ``tests/test_faults.py`` runs a small
seeded slice of the same campaign.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import mutations  # noqa: E402

from creative_studio.core.errors import StudioError  # noqa: E402

BAD = ("traceback", "hang", "modified", "silent", "escaped", "corrupt", "lost")
TIME_LIMIT = 20


class Hang(Exception):
    pass


@contextmanager
def limit(seconds: int):
    def alarm(signum, frame):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def digest(path: Path) -> str:
    """The project file's bytes (its journal is SQLite's to roll back or discard)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "-"


def classify(action) -> tuple[str, str]:
    """(outcome, detail) of running ``action`` under the time limit."""
    try:
        with limit(TIME_LIMIT):
            action()
    except Hang:
        return "hang", ""
    except StudioError as exc:
        return "refused", str(exc)[:80]
    except Exception as exc:  # noqa: BLE001 - what the campaign looks for
        import traceback

        where = traceback.extract_tb(exc.__traceback__)[-1]
        return "traceback", (f"{type(exc).__name__}: {str(exc)[:120]} at "
                             f"{Path(where.filename).name}:{where.lineno}")
    return "read", "ok"


# -- projects ---------------------------------------------------------------------------------
def project_trial(base: Path, originals: dict[str, bytes], rng: random.Random,
                  work: Path) -> tuple[str, str, str]:
    """One damaged project through open → list → export all → check; (outcome, mutation,
    detail)."""
    from creative_studio.core.project import DamagedAsset, ProjectStore
    from creative_studio.io.export import export_item, suggested_name

    path = work / "p.csproj"
    shutil.copyfile(base, path)
    name, flipped = mutations.damage_project(path, rng, work)
    before = digest(path)
    silent: list[str] = []

    outside = set(work.parent.parent.rglob("*")) - set(work.rglob("*"))

    def read() -> None:
        store = ProjectStore.open(path)
        try:
            reported = set()
            for item in store.items():
                made = mutations.RECIPES.get(item.id)
                if made and not item.damaged and (item.request.prompt, item.request.seed,
                                                  item.title, item.parents) != made:
                    silent.append(f"recipe {item.id[:8]}")  # a changed recipe read unseen
                for asset in item.assets[:1]:
                    target = work / "out" / suggested_name(item)  # names from the file
                    try:
                        export_item(store, item, target)
                    except DamagedAsset:
                        reported.add(item.id)
                        continue
                    except StudioError:
                        continue
                    data = store.asset_bytes(asset.id)
                    if item.id in originals and data != originals[item.id]:
                        silent.append(item.id)
            problems = store.check()
            missed = [i for i in flipped if i not in problems and i not in reported]
            silent.extend(missed)
        finally:
            store.close()

    outcome, detail = classify(read)
    opened = outcome == "read"
    if outcome in ("read", "refused") and silent:
        outcome, detail = "silent", f"items {silent[:3]}"
    if outcome in ("read", "refused") and digest(path) != before and not (opened and "journal" in name):
        outcome = "modified"
    escaped = set(work.parent.parent.rglob("*")) - set(work.rglob("*")) - outside
    if escaped:
        outcome, detail = "escaped", str(sorted(escaped)[:2])
    return outcome, name, detail


# -- pictures, MIDI, PNG recipes ------------------------------------------------------------
def picture_trial(data: bytes, rng: random.Random) -> tuple[str, str, str]:
    from creative_studio.io.images import decode_image, to_rgb

    bad, name = mutations.damage_bytes(data, rng)

    def read() -> None:
        to_rgb(decode_image(bad, "picture"))

    outcome, detail = classify(read)
    return outcome, name, detail


def midi_trial(generator, data: bytes, rng: random.Random) -> tuple[str, str, str]:
    from creative_studio.core.jobs import Asset, Request
    from creative_studio.core.progress import Progress
    from tests.conftest import prepared

    bad, name = mutations.damage_midi(data, rng)
    request = prepared(Request("music", "continue", params={"bars": 1, "keep_bars": 2},
                               seed=1, parents=["m"]))
    outcome, detail = classify(lambda: generator.generate(
        request, Progress(), {"m": [Asset("midi", "audio/midi", bad, "x.mid")]}))
    return outcome, name, detail


def png_trial(rng: random.Random) -> tuple[str, str, str]:
    from plugins.image.recipes import recipe_from_png

    data, name = mutations.hostile_png(rng)
    outcome, detail = classify(lambda: recipe_from_png(data, "picture.png"))
    return outcome, name, detail


# -- kills ------------------------------------------------------------------------------------
WRITER = r"""
import sys, time, random
sys.path.insert(0, sys.argv[1])
from creative_studio.core.jobs import Asset, ModelIdentity, Request, Result
from creative_studio.core.project import ProjectStore
mode, path = sys.argv[2], sys.argv[3]
if mode == "create":
    while True:
        ProjectStore.create(path).close(); print("created", flush=True)
if mode == "cache":
    from creative_studio.core import files
    n = 0
    while True:
        n += 1; files.atomic_write(path, (str(n) + "\n") * 200_000); print(n, flush=True)
store = ProjectStore.open(path) if mode == "append" else ProjectStore.create(path)
rng = random.Random(int(sys.argv[4]))
while True:
    data = rng.randbytes(rng.randint(10, 400_000))
    item = store.add_item(Request("text", "generate", "kill me", seed=1),
                          Result([Asset("text", "application/octet-stream", data)],
                                 ModelIdentity("m", "embedded:m"), "cpu"))
    print(item, __import__("hashlib").sha256(data).hexdigest(), flush=True)
"""


def kill_trial(rng: random.Random, work: Path, index: int) -> tuple[str, str, str]:
    from creative_studio.core.project import ProjectStore

    mode = ("create", "cache", "append", "new")[index % 4]
    target = work / ("cache.json" if mode == "cache" else "k.csproj")
    if mode == "append":
        ProjectStore.create(target).close()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(ROOT), mode, str(target),
                             str(rng.randrange(1 << 30))], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    time.sleep(0.4 + rng.random() * 1.2)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    # only whole lines are promises: the kill can cut the last one
    lines = [line.split() for line in out.split("\n")[:-1] if line.strip()]
    if mode == "cache":
        if not target.exists():
            return "read", mode, "nothing yet"
        text = target.read_text()
        whole = text and len(set(text.splitlines())) == 1 and len(text.splitlines()) == 200_000
        return ("read" if whole else "corrupt"), mode, f"{len(text)} bytes"
    if not target.exists():  # killed before the first creation finished: nothing promised
        return ("lost" if lines and mode != "create" else "read"), mode, "no file"
    try:
        store = ProjectStore.open(target)
    except StudioError as exc:
        return "corrupt", mode, str(exc)[:80]
    try:
        if mode == "create":
            return "read", mode, f"{len(lines)} created"
        import hashlib as h

        have = {item.id: item for item in store.items()}
        for item_id, sha in lines:
            item = have.get(item_id)
            if item is None or h.sha256(store.asset_bytes(item.assets[0].id)).hexdigest() != sha:
                return "lost", mode, item_id
        return "read", mode, f"{len(lines)} committed, all there"
    finally:
        store.close()
        for leftover in work.glob("*"):
            if leftover.is_file():
                leftover.unlink()


def schema_trial(base: Path, originals: dict[str, bytes], rng: random.Random,
                 work: Path) -> tuple[str, str, str]:
    """One flipped character of the schema text, through the same readers as a damaged
    project; the file opens whole (every item, recipe and output as made) or is refused."""
    from creative_studio.core.project import ProjectStore

    path = work / "p.csproj"
    shutil.copyfile(base, path)
    name = mutations.flip_schema(path, rng)
    before = digest(path)
    wrong: list[str] = []

    def read() -> None:
        store = ProjectStore.open(path)
        try:
            items = store.items()
            if sorted(i.id for i in items) != sorted(originals):
                wrong.append("items")
            for item in items:
                if item.damaged:
                    continue  # said
                if not item.assets or store.asset_bytes(item.assets[0].id) != \
                        originals.get(item.id):
                    wrong.append(item.id[:8])
            store.check()
        finally:
            store.close()

    outcome, detail = classify(read)
    if outcome == "read" and wrong:
        outcome, detail = "silent", f"{wrong[:3]}"
    if outcome in ("read", "refused") and digest(path) != before:
        outcome = "modified"
    return outcome, name, detail


def settings_trial(rng: random.Random, home: Path) -> tuple[str, str, str]:
    """A damaged preferences file read as the window and the CLI read it, then saved:
    never a crash, and the servers it held are loaded, or the file is kept aside as it
    was and the damage said (``lost``: servers gone without either)."""
    from creative_studio.core.settings import Settings

    data, name = mutations.damage_settings(rng)
    path = Settings.path()
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob("settings.json*"):
        old.unlink()
    path.write_bytes(data)
    told: list[str] = []

    def read() -> None:
        settings = Settings.load()
        told.append(settings.keep_damaged())
        kept = [s.get("name") for s in settings.servers]
        settings.theme = "light"
        settings.save()
        told.append(",".join(str(k) for k in kept))

    outcome, detail = classify(read)
    if outcome != "read":
        return outcome, name, detail
    said, kept = told
    aside = sorted(path.parent.glob("settings.json.damaged-*"))
    whole = kept == "lab,farm"
    if not whole and not (said and aside and aside[0].read_bytes() == data):
        return "lost", name, f"servers {kept!r}, said {bool(said)}"
    return ("refused" if said else "read"), name, "said, kept aside" if said else "ok"


# ----------------------------------------------------------------------------------------------
def run(seed: int = 1, projects: int = 300, pictures: int = 200, midis: int = 200,
        pngs: int = 100, kills: int = 100, verbose: bool = False, schemas: int = 1000,
        settings: int = 60) -> dict[str, Counter]:
    """Run the campaign; returns {kind: Counter of outcomes}."""
    rng = random.Random(seed)
    home = Path(tempfile.mkdtemp(prefix="studio-faults-"))
    os.environ["CREATIVE_STUDIO_HOME"] = str(home / "home")
    table: dict[str, Counter] = {}
    details: list[str] = []

    def record(kind: str, outcome: str, name: str, detail: str) -> None:
        table.setdefault(kind, Counter())[outcome] += 1
        table[kind]["trials"] += 1
        if outcome in BAD:
            details.append(f"{kind} {name}: {outcome} {detail}")
        if verbose:
            print(f"{kind:<9} {name:<22} {outcome:<9} {detail}", flush=True)

    try:
        base, originals = mutations.make_project(home / "base.csproj")
        for index in range(projects):
            work = home / "trials" / f"p{index}" / "in"  # files escaping it are looked for
            work.mkdir(parents=True)
            record("projects", *project_trial(base, originals, rng, work))
            shutil.rmtree(work.parent, ignore_errors=True)
        for index in range(schemas):
            work = home / "trials" / f"s{index}" / "in"
            work.mkdir(parents=True)
            record("schema", *schema_trial(base, originals, rng, work))
            shutil.rmtree(work.parent, ignore_errors=True)
        for _ in range(settings):
            record("settings", *settings_trial(rng, home))
        picture = mutations.make_picture(rng)
        for _ in range(pictures):
            record("pictures", *picture_trial(picture, rng))
        if midis:
            generator = mutations.music_generator()
            melody = mutations.make_midi()
            for _ in range(midis):
                record("midis", *midi_trial(generator, melody, rng))
        for _ in range(pngs):
            record("png recipes", *png_trial(rng))
        for index in range(kills):
            work = home / f"k{index}"
            work.mkdir()
            record("kills", *kill_trial(rng, work, index))
            shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    run.details = details  # type: ignore[attr-defined]
    return table


def print_table(table: dict[str, Counter]) -> int:
    columns = ("trials", "read", "refused", *BAD)
    print(f"{'':<12}" + "".join(f"{c:>10}" for c in columns))
    bad = 0
    for kind, counts in table.items():
        print(f"{kind:<12}" + "".join(f"{counts.get(c, 0):>10}" for c in columns))
        bad += sum(counts.get(c, 0) for c in BAD)
    for line in getattr(run, "details", [])[:30]:
        print("  " + line)
    return bad


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--projects", type=int, default=300)
    parser.add_argument("--pictures", type=int, default=200)
    parser.add_argument("--midis", type=int, default=200)
    parser.add_argument("--pngs", type=int, default=100)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--schemas", type=int, default=1000,
                        help="schema-text flips (one character of a table's or index's SQL)")
    parser.add_argument("--settings", type=int, default=60, help="damaged preferences files")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    table = run(args.seed, args.projects, args.pictures, args.midis, args.pngs, args.kills,
                args.verbose, args.schemas, args.settings)
    bad = print_table(table)
    print(f"\n{time.perf_counter() - started:.0f} s; seed {args.seed}; "
          f"{'all clear' if not bad else f'{bad} bad outcome(s)'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
