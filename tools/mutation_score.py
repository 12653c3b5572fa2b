"""The mutation score per module, from what ``mutmut run`` left in ``mutants/``: killed (or
timed out) over the mutants checked, less those listed as equivalent in
``bench/mutation_equivalents.md`` (a mutant that changes nothing a caller can observe, each
with its reason). ``--survivors`` lists the mutants no test caught, to read with
``mutmut show NAME``.

    bash tools/mutation.sh                        # runs mutmut, then this
    .venv/bin/python tools/mutation_score.py [--survivors]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KILLED = {1, 3, 36, 24, -24, 152, 255, -9}  # killed, pytest error, timeouts (mutmut's
# codes); -9: the tests ran out of memory (a mutant that reads an endless reply whole)
SURVIVED = {0}
NO_TESTS = {5, 33}


def equivalents(path: Path = ROOT / "bench" / "mutation_equivalents.md") -> set[str]:
    """Mutant names listed in the equivalents file (lines starting with `- ``name```)."""
    if not path.is_file():
        return set()
    return set(re.findall(r"^- `([\w.]+__mutmut_\d+)`", path.read_text(), re.MULTILINE))


SQL = re.compile(r"\b(select|insert|delete|update|create|pragma|begin|commit|rollback|from|"
                 r"where|values|order by|or replace|or ignore|alter table|add column|"
                 r"drop column)\b", re.IGNORECASE)


def _blocks(source: str) -> dict[str, str]:
    """Function name → its text, for every def in a mutmut-generated module."""
    out, name, lines, indent = {}, None, [], 0
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("def "):
            if name:
                out[name] = "\n".join(lines)
            name, lines, indent = stripped[4:].split("(")[0], [line], len(line) - len(stripped)
        elif name and (not stripped or len(line) - len(line.lstrip()) > indent):
            lines.append(line)
        elif name:
            out[name], name = "\n".join(lines), None
    if name:
        out[name] = "\n".join(lines)
    return out


def sql_case_only(module_source: str, mutant: str) -> bool:
    """Whether a mutant only changes the letter case inside an SQL string: SQLite's keywords
    and the project's (ASCII) table and column names are case-insensitive, so it is
    equivalent by rule."""
    short = mutant.rsplit(".", 1)[-1]
    if "ǁ" in short:
        short = short.split("ǁ")[-1]
        short = "xǁ" + mutant.rsplit(".", 1)[-1].split("ǁ")[1] + "ǁ" + short
    blocks = _blocks(module_source)
    changed = blocks.get(short)
    original = blocks.get(short.rsplit("__mutmut_", 1)[0] + "__mutmut_orig")
    if changed is None or original is None:
        return False
    a = original.splitlines()[1:]
    b = changed.splitlines()[1:]
    if len(a) != len(b):
        return False
    diffs = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    return bool(diffs) and all(x.lower() == y.lower() and SQL.search(x) for x, y in diffs)


def equivalent_in(folder: Path, module: str, same: set[str]):
    """A test ``(name, code) → bool``: the mutant is listed in ``same`` or, having survived,
    only changes the letter case of SQL in ``module`` (its mutmut source read once)."""
    source_file = folder / module
    source = source_file.read_text() if source_file.is_file() else ""
    return lambda name, code: name in same or (code in SURVIVED and sql_case_only(source, name))


def results(folder: Path = ROOT / "mutants") -> dict[str, dict[str, int | None]]:
    """module path → {mutant name: exit code (None: not checked yet)}."""
    out: dict[str, dict[str, int | None]] = {}
    for meta in sorted(folder.rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        module = str(meta.relative_to(folder))[:-len(".meta")]
        out[module] = dict(data.get("exit_code_by_key", {}))
    return out


def _sample_rates(sampled: set[str], same: set[str]) -> dict[str, float]:
    """Module → the kill rate among its sampled mutants that have been checked."""
    killed: dict[str, int] = defaultdict(int)
    checked: dict[str, int] = defaultdict(int)
    for module, codes in results().items():
        equivalent = equivalent_in(ROOT / "mutants", module, same)
        for name, code in codes.items():
            if name in sampled and not equivalent(name, code) and code is not None:
                checked[module] += 1
                killed[module] += code in KILLED
    return {m: killed[m] / checked[m] for m in checked}


def sample(count: int, seed: int, modules: list[str] | None = None) -> list[str]:
    """``count`` not-checked mutants drawn at random, each module in proportion to its share
    of them (its equivalents left out); with ``modules`` (path prefixes), ``count`` from each
    module they name (all of a module's mutants where it has fewer)."""
    import random

    same = equivalents()
    todo = {module: sorted(k for k, v in codes.items() if v is None and k not in same)
            for module, codes in results().items()
            if not modules or any(module.startswith(prefix) for prefix in modules)}
    total = sum(len(names) for names in todo.values())
    rng = random.Random(seed)
    out: list[str] = []
    for _module, names in sorted(todo.items()):
        share = count if modules else round(count * len(names) / total) if total else 0
        out += rng.sample(names, min(share, len(names)))
    return out


def recheck(folder: Path = ROOT / "mutants") -> int:
    """Set survivors and no-test mutants (not those listed as equivalent) back to "not
    checked" in mutmut's .meta files."""
    count, same = 0, equivalents()
    for meta in sorted(folder.rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        codes = data.get("exit_code_by_key", {})
        equivalent = equivalent_in(folder, str(meta.relative_to(folder))[:-len(".meta")], same)
        again = [k for k, v in codes.items() if v in SURVIVED | NO_TESTS and not equivalent(k, v)]
        for key in again:
            codes[key] = None
        if again:
            meta.write_text(json.dumps(data, indent=4))
            count += len(again)
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--survivors", action="store_true")
    parser.add_argument("--recheck", action="store_true",
                        help="mark survivors and mutants without tests as not checked")
    parser.add_argument("--sample", type=int, default=0,
                        help="print this many not-checked mutants drawn at random")
    parser.add_argument("--modules", nargs="+", default=None,
                        help="with --sample: that many from each module under these paths")
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--estimate", nargs="+", type=Path, default=[],
                        help="files of sampled mutant names: estimate each module's score")
    args = parser.parse_args()
    if args.sample:
        print("\n".join(sample(args.sample, args.seed, args.modules)))
        return 0
    if args.recheck:
        print(f"{recheck()} mutants to check again")
    same = equivalents()
    rows, total = [], defaultdict(int)
    survivors = []
    for module, codes in results().items():
        count = defaultdict(int)
        equivalent = equivalent_in(ROOT / "mutants", module, same)
        for name, code in codes.items():
            if equivalent(name, code):
                count["equivalent"] += 1
            elif code is None:
                count["not checked"] += 1
            elif code in KILLED:
                count["killed"] += 1
            elif code in SURVIVED:
                count["survived"] += 1
                survivors.append(name)
            elif code in NO_TESTS:
                count["no tests"] += 1
                survivors.append(name)
            else:
                count["other"] += 1
        if not codes:
            continue
        rows.append((module, count))
        for key, value in count.items():
            total[key] += value
    sampled = set()
    for path in args.estimate:
        sampled |= set(path.read_text().split())
    rates = _sample_rates(sampled, same) if sampled else {}
    print(f"{'module':42} {'killed':>7} {'surv.':>6} {'no t.':>6} {'equiv':>6} "
          f"{'todo':>6} {'score':>7}" + (f" {'estimate':>9}" if sampled else ""))
    expected = {"killed": 0.0, "all": 0}
    for module, count in rows + [("(all)", total)]:
        checked = count["killed"] + count["survived"] + count["no tests"] + count["other"]
        score = 100.0 * count["killed"] / checked if checked else float("nan")
        line = (f"{module:42} {count['killed']:7} {count['survived']:6} {count['no tests']:6} "
                f"{count['equivalent']:6} {count['not checked']:6} {score:6.1f}%")
        if sampled and module != "(all)":
            rate = rates.get(module, score / 100 if not count["not checked"] else None)
            if rate is not None:
                killed = count["killed"] + count["not checked"] * rate
                expected["killed"] += killed
                expected["all"] += checked + count["not checked"]
                line += f" {100 * killed / (checked + count['not checked']):8.1f}%"
            else:
                line += "   (no sample)"
        elif sampled and expected["all"]:
            line += f" {100 * expected['killed'] / expected['all']:8.1f}%"
        print(line)
    if args.survivors:
        print("\nsurvivors (mutmut show NAME):")
        for name in survivors:
            print("  " + name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
