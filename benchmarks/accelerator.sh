#!/usr/bin/env bash
# One prepared accelerator benchmark (under 8 minutes on one H100): `scaling bench` at the
# `base` preset in bf16 (tokens/s, MFU), packed nano/micro runs at K = 1, 8, 32, 128
# (throughput relative to K = 1), and the quickstart study's wall time. Writes one JSON file.
#
#   benchmarks/accelerator.sh                  # -> $OUT/accelerator.json, else ./accelerator.json
#   benchmarks/accelerator.sh results.json     # -> results.json
#   benchmarks/accelerator.sh --tiny           # tiny shapes: checks the script on a CPU
#
# PYTHON picks the interpreter (default: .venv/bin/python if present, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
tiny=()
target=""
for arg in "$@"; do
  case "$arg" in
    --tiny) tiny=(--tiny) ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) target="$arg" ;;
  esac
done
if [ -z "$target" ]; then
  target="${OUT:-.}/accelerator.json"
fi
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 900 "$PYTHON" benchmarks/accelerator.py "${tiny[@]}" --out "$target"
