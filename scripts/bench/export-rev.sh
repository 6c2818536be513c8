#!/usr/bin/env bash
# Exports one commit of qforge (git archive, no work tree or index involved) into the bench cache
# and prints the directory, so that benchmarks can time a fixed commit while the work tree moves.
#
#   scripts/bench/export-rev.sh REV
#
# The directory is ${QFORGE_CACHE:-~/.cache/qforge}/bench/src-<short hash>; callers build in it
# (its target/ stays there, so a second run of the same commit rebuilds nothing). The bench
# harness benches/codec_throughput.rs is copied from the work tree when the commit lacks it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
REV=$(git -C "$ROOT" rev-parse --short=10 "${1:?usage: export-rev.sh REV}^{commit}")
DIR="${QFORGE_CACHE:-$HOME/.cache/qforge}/bench/src-$REV"
if [ ! -f "$DIR/.exported" ]; then
  rm -rf "$DIR"
  mkdir -p "$DIR"
  git -C "$ROOT" archive "$REV" | tar -x -C "$DIR"
  touch "$DIR/.exported"
fi
if [ ! -f "$DIR/benches/codec_throughput.rs" ] && [ -f "$ROOT/benches/codec_throughput.rs" ]; then
  mkdir -p "$DIR/benches"
  cp "$ROOT/benches/codec_throughput.rs" "$DIR/benches/"
fi
echo "$DIR"
