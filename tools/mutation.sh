#!/usr/bin/env bash
# Mutation testing (pyproject's [tool.mutmut]): mutmut 3 makes one-line changes to
# creative_studio/core, workers, io, engines, the panels' base class (ui/panel.py), the music
# grammar and harmonizer, tiling, the image recipes and workflows and the text context, runs
# the tests that reach each change (unit, property, window, model and server tests: each
# mutant only those that reach it, fastest first) and counts the changes no test notices.
# Hours on 2 cores for everything; results are kept in mutants/ and a rerun checks only what
# is new or changed. Not in CI. A seeded sample per module when there is no time for all:
#
#   bash tools/mutation.sh                     # everything
#   bash tools/mutation.sh "plugins.upscale.tiling*"   # one module (mutmut's names)
#   .venv/bin/python tools/mutation_score.py --sample 80 --seed 34 \
#       --modules creative_studio/engines plugins/text/context.py > sample.txt
#   bash tools/mutation.sh $(cat sample.txt)   # then: tools/mutation_score.py --estimate sample.txt
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
"$VENV/bin/python" -c "import mutmut" 2>/dev/null || "$VENV/bin/python" -m pip -q install -e ".[test,mutation]"
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 CREATIVE_STUDIO_NO_PRELOAD=1
# the set-up's downloads (ComfyUI, GGUF models) for the server tests that run in mutants/
mkdir -p mutants
[ -L mutants/.cache ] || { rm -rf mutants/.cache; ln -s ../.cache mutants/.cache; }
"$VENV/bin/mutmut" run --max-children "${MUTATION_JOBS:-$(nproc)}" "$@" | tr '\r' '\n' | grep -v "^⠋\|^⠙\|^⠹\|^⠸\|^⠼\|^⠴\|^⠦\|^⠧\|^⠇\|^⠏" || true
"$VENV/bin/python" tools/mutation_score.py --survivors
