#!/usr/bin/env bash
# Mutation testing of the modules issue 26 names (pyproject's [tool.mutmut]): mutmut 3 makes
# one-line changes to creative_studio/core, workers, io, the music grammar, tiling and the
# image recipes, runs the tests that reach each change, and counts the changes no test
# notices. Hours on 2 cores; results are kept in mutants/ and a rerun checks only what is
# new or changed. Not in CI.
#
#   bash tools/mutation.sh                     # everything
#   bash tools/mutation.sh "plugins.upscale.tiling*"   # one module (mutmut's names)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
"$VENV/bin/python" -c "import mutmut" 2>/dev/null || "$VENV/bin/python" -m pip -q install -e ".[test,mutation]"
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 CREATIVE_STUDIO_NO_PRELOAD=1
"$VENV/bin/mutmut" run --max-children "${MUTATION_JOBS:-$(nproc)}" "$@" | tr '\r' '\n' | grep -v "^⠋\|^⠙\|^⠹\|^⠸\|^⠼\|^⠴\|^⠦\|^⠧\|^⠇\|^⠏" || true
"$VENV/bin/python" tools/mutation_score.py --survivors
