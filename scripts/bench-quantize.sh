#!/usr/bin/env bash
# Times qforge against the pinned llama-quantize on a synthetic llama-architecture F16 model and
# checks that both write the same bytes.
#
#   scripts/bench-quantize.sh [-t THREADS] [-n REPS] [-T TYPES] [-i] [-m] [-s] [-o OUTDIR] [-c REV]
#
#   -t THREADS  threads for both tools (default 2)
#   -n REPS     runs per tool and type, interleaved llama/qforge, qforge/llama, ... (default 3)
#   -T TYPES    comma-separated llama-quantize type names (default Q8_0,Q4_K_M,Q6_K,IQ4_XS)
#   -i          also run Q4_K_M and IQ4_XS with an importance matrix, made once by llama-imatrix
#               on the synthetic model (4 chunks of 128 tokens of generated text)
#   -m          write the table into BENCHMARKS.md, between its bench-quantize markers
#   -s          small model (2 layers, n_embd 512, vocab 4000) for a quick check of the script
#   -o OUTDIR   where the outputs go (default /dev/shm/qforge-bench-$UID, a tmpfs, so that disk
#               writeback does not add noise; each output is deleted once compared)
#   -c REV      time qforge as of commit REV (exported with git archive into the bench cache and
#               built there) instead of the work tree, which other people may be editing
#
# Everything generated is cached under ${QFORGE_CACHE:-~/.cache/qforge}/bench: the model
# (about 1 GB, keyed on the generator script and its arguments) and the imatrix. Exits 1 if any
# pair of outputs differs. Needs: scripts/build-oracle.sh (llama.cpp + gguf-py), cargo,
# /usr/bin/time (GNU time; installed with apt-get when missing).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CACHE="${QFORGE_CACHE:-$HOME/.cache/qforge}"
BENCH_CACHE="$CACHE/bench"

THREADS=2
REPS=3
TYPES=Q8_0,Q4_K_M,Q6_K,IQ4_XS
IMATRIX=0
WRITE_MD=0
SMALL=0
OUTDIR="/dev/shm/qforge-bench-$(id -u)"
REV=
while getopts "t:n:T:imso:c:h" opt; do
  case "$opt" in
    t) THREADS=$OPTARG ;;
    n) REPS=$OPTARG ;;
    T) TYPES=$OPTARG ;;
    i) IMATRIX=1 ;;
    m) WRITE_MD=1 ;;
    s) SMALL=1 ;;
    o) OUTDIR=$OPTARG ;;
    c) REV=$OPTARG ;;
    h) sed -n '2,24p' "$0"; exit 0 ;;
    *) sed -n '2,24p' "$0" >&2; exit 2 ;;
  esac
done
[ -d /dev/shm ] || [ "$OUTDIR" != "/dev/shm/qforge-bench-$(id -u)" ] || OUTDIR="$BENCH_CACHE/out"

log() { printf '[bench-quantize] %s\n' "$*" >&2; }

if [ ! -x /usr/bin/time ]; then
  log "installing GNU time"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq time >/dev/null
fi

BIN=$(bash "$ROOT/scripts/build-oracle.sh" | tail -1)
PY="$CACHE/venv-gguf-0.3.36/bin/python"
mkdir -p "$BENCH_CACHE"
if [ -n "$REV" ]; then
  QROOT=$(bash "$HERE/bench/export-rev.sh" "$REV")
  QREV="commit $(git -C "$ROOT" rev-parse --short=10 "$REV^{commit}")"
else
  QROOT=$ROOT
  QREV="work tree at $(git -C "$ROOT" rev-parse --short=10 HEAD)"
  git -C "$ROOT" diff --quiet HEAD -- formats src Cargo.toml Cargo.lock || QREV="$QREV plus uncommitted changes"
fi
log "building qforge (release) in $QROOT ($QREV)"
(cd "$QROOT" && cargo build --release --quiet)
QFORGE="$QROOT/target/release/qforge"

MODEL=$(bash "$HERE/bench/model.sh" $([ "$SMALL" = 1 ] && echo -s))
KEY=$(basename "$MODEL" -f16.gguf)
KEY=${KEY#bench-llama-}
N_PARAMS=$("$PY" - "$MODEL" <<'EOF'
import sys, numpy as np, gguf
r = gguf.GGUFReader(sys.argv[1])
print(sum(int(np.prod(t.shape)) for t in r.tensors))
EOF
)

BENCH_ARGS=()
if [ "$IMATRIX" = 1 ]; then
  IMAT="$BENCH_CACHE/bench-llama-$KEY.imatrix.gguf"
  if [ ! -f "$IMAT" ]; then
    log "computing an imatrix with llama-imatrix (4 chunks of 128 tokens)"
    TEXT="$BENCH_CACHE/imatrix-text.txt"
    "$PY" -c '
import random
random.seed(7)
w = "the of and to in is that for it as was with be by on not he this are or his from at which".split()
print(" ".join(random.choice(w) for _ in range(6000)))' >"$TEXT"
    "$BIN/llama-imatrix" -m "$MODEL" -f "$TEXT" -c 128 --chunks 4 -t "$THREADS" -o "$IMAT.tmp.gguf" \
      >"$BENCH_CACHE/imatrix.log" 2>&1 || { tail -20 "$BENCH_CACHE/imatrix.log" >&2; exit 1; }
    mv "$IMAT.tmp.gguf" "$IMAT"
  fi
  BENCH_ARGS+=(--imatrix "$IMAT")
fi

CMDLINE="scripts/bench-quantize.sh $*"
[ "$WRITE_MD" = 1 ] && BENCH_ARGS+=(--md "$ROOT/BENCHMARKS.md")
log "model $MODEL ($N_PARAMS parameters), types $TYPES, $THREADS threads, $REPS reps, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$HERE/bench/bench.py" --model "$MODEL" --llama-quantize "$BIN/llama-quantize" --qforge "$QFORGE" \
  --types "$TYPES" --threads "$THREADS" --reps "$REPS" --outdir "$OUTDIR" --n-params "$N_PARAMS" \
  --command-line "$CMDLINE" --qforge-rev "$QREV" "${BENCH_ARGS[@]}"
