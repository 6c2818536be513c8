#!/usr/bin/env bash
# Prints the path of the synthetic bench model, generating it first if it is not cached.
#
#   scripts/bench/model.sh [-s]
#
#   -s  the small model (2 layers, n_embd 512, vocab 4000: 20 MB) instead of the default
#       (8 layers, n_embd 2048, n_ff 5632, 16/4 heads, vocab 32000: 492M parameters, 0.98 GB)
#
# The file is ${QFORGE_CACHE:-~/.cache/qforge}/bench/bench-llama-<key>-f16.gguf, keyed on the
# generator script (make_bench_model.py) and its arguments. Needs the gguf-py venv of
# scripts/build-oracle.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE="${QFORGE_CACHE:-$HOME/.cache/qforge}"
BENCH_CACHE="$CACHE/bench"
PY="$CACHE/venv-gguf-0.3.36/bin/python"
if [ "${1:-}" = -s ]; then
  GEN_ARGS=(--layers 2 --embd 512 --ff 1408 --heads 8 --heads-kv 2 --vocab 4000)
else
  GEN_ARGS=(--layers 8 --embd 2048 --ff 5632 --heads 16 --heads-kv 4 --vocab 32000)
fi
mkdir -p "$BENCH_CACHE"
KEY=$( (cat "$HERE/make_bench_model.py"; echo "${GEN_ARGS[*]}") | sha256sum | cut -c1-12)
MODEL="$BENCH_CACHE/bench-llama-$KEY-f16.gguf"
if [ ! -f "$MODEL" ]; then
  [ -x "$PY" ] || { echo "no gguf-py venv at $PY: run scripts/build-oracle.sh" >&2; exit 1; }
  printf '[bench] generating %s (%s)\n' "$MODEL" "${GEN_ARGS[*]}" >&2
  "$PY" "$HERE/make_bench_model.py" "$MODEL" "${GEN_ARGS[@]}"
fi
echo "$MODEL"
