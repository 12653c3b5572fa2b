"""Branch coverage per package, from the ``.coverage`` file a ``pytest --cov`` run left, and
the floors the project holds itself to (issue 26): ``creative_studio/core`` and
``creative_studio/workers`` at least 90 % of their branches, the whole at least 80 %.

    .venv/bin/python -m pytest --cov --cov-report=        # writes .coverage
    .venv/bin/python tools/coverage_table.py [--check]    # the table; --check: exit 1 below

The CLI and the app the tests start as processes count too (``patch = ["subprocess"]`` in
pyproject's ``[tool.coverage.run]``).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORS = {"creative_studio/core": 90.0, "creative_studio/workers": 90.0, "(all)": 80.0}


def package_of(path: str) -> str:
    """creative_studio/core/project.py → creative_studio/core; plugins/music/x.py →
    plugins/music; creative_studio/cli.py → creative_studio."""
    parts = Path(path).parts
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def table(data_file: Path) -> dict[str, list[int]]:
    """package → [statements, covered, branches, covered branches]; "(all)" the sum (read
    from coverage's JSON report of ``data_file``)."""
    import json
    import tempfile

    import coverage

    cov = coverage.Coverage(data_file=str(data_file), config_file=str(ROOT / "pyproject.toml"))
    cov.load()
    with tempfile.TemporaryDirectory() as folder:
        cov.json_report(outfile=str(Path(folder) / "coverage.json"))
        files = json.loads((Path(folder) / "coverage.json").read_text())["files"]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for filename, measured in sorted(files.items()):
        path = Path(filename)
        relative = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) \
            else path
        if relative.parts[0] not in ("creative_studio", "plugins"):
            continue
        summary = measured["summary"]
        row = [summary["num_statements"], summary["covered_lines"],
               summary.get("num_branches", 0), summary.get("covered_branches", 0)]
        for key in (package_of(str(relative)), "(all)"):
            totals[key] = [a + b for a, b in zip(totals[key], row, strict=True)]
    return dict(totals)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-file", type=Path, default=ROOT / ".coverage")
    parser.add_argument("--check", action="store_true", help="exit 1 when below a floor")
    args = parser.parse_args()
    totals = table(args.data_file)
    print(f"{'package':28} {'lines':>15} {'branches':>17}  floor")
    short = []
    for name in sorted(totals, key=lambda n: (n == "(all)", n)):
        lines, hit, branches, taken = totals[name]
        if not lines:  # a package of empty __init__ files
            continue
        line_pct = 100.0 * hit / lines if lines else 100.0
        branch_pct = 100.0 * taken / branches if branches else 100.0
        floor = FLOORS.get(name)
        mark = "" if floor is None else f"≥{floor:.0f}% " + ("ok" if branch_pct >= floor
                                                            else "BELOW")
        if floor is not None and branch_pct < floor:
            short.append(f"{name} {branch_pct:.1f}% < {floor:.0f}%")
        print(f"{name:28} {hit:6}/{lines:<6} {line_pct:5.1f}% {taken:5}/{branches:<5} "
              f"{branch_pct:5.1f}%  {mark}")
    if short:
        print("branch coverage below its floor: " + "; ".join(short))
    return 1 if short and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
