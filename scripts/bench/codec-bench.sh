#!/usr/bin/env bash
# Single-thread codec throughput, qforge vs the pinned ggml, on the same rows of the bench model.
#
#   scripts/bench/codec-bench.sh [-r ROUNDS] [-n REPS] [-T TYPES] [-w TENSOR] [-R ROWS] [-i] [-c REV]
#
#   -r ROUNDS  rounds; each runs ggml then qforge (odd rounds) or qforge then ggml (even) (default 3)
#   -n REPS    timed repetitions per type inside each program, after a warm-up (default 5)
#   -T TYPES   ggml type names or f16->f32 (default f16->f32,q8_0,q4_0,q4_K,q5_K,q6_K,iq4_xs)
#   -w TENSOR  tensor of the bench model to take rows from (default blk.0.ffn_gate.weight)
#   -R ROWS    rows to take (default 512: 1M weights of a 2048-wide tensor)
#   -i         also time every type with importance weights (the imatrix entry of TENSOR from the
#              bench imatrix, which scripts/bench-quantize.sh -i makes)
#   -c REV     time qforge's codecs as of commit REV (scripts/bench/export-rev.sh), not the work tree
#   -m         write the table into BENCHMARKS.md between its codec-bench markers
#
# Needs the bench model: run scripts/bench-quantize.sh once first (it caches it). Prints one row
# per type: medians over rounds of millions of weights per second per thread (thread CPU time),
# for ggml and qforge, and their ratio.
set -euo pipefail
CMDLINE="scripts/bench/codec-bench.sh $*"

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE="${QFORGE_CACHE:-$HOME/.cache/qforge}"
BENCH_CACHE="$CACHE/bench"
ROUNDS=3
REPS=5
TYPES="f16->f32,q8_0,q4_0,q4_K,q5_K,q6_K,iq4_xs"
TENSOR=blk.0.ffn_gate.weight
ROWS=512
IMATRIX=0
REV=
WRITE_MD=0
while getopts "r:n:T:w:R:ic:mh" opt; do
  case "$opt" in
    r) ROUNDS=$OPTARG ;;
    n) REPS=$OPTARG ;;
    T) TYPES=$OPTARG ;;
    w) TENSOR=$OPTARG ;;
    R) ROWS=$OPTARG ;;
    i) IMATRIX=1 ;;
    c) REV=$OPTARG ;;
    m) WRITE_MD=1 ;;
    h) sed -n '2,19p' "$0"; exit 0 ;;
    *) sed -n '2,19p' "$0" >&2; exit 2 ;;
  esac
done
log() { printf '[codec-bench] %s\n' "$*" >&2; }

BIN=$(bash "$ROOT/scripts/build-oracle.sh" | tail -1)
BUILD=$(dirname "$BIN")
SRC="$CACHE/llama_cpp_python-0.3.36/vendor/llama.cpp"
PY="$CACHE/venv-gguf-0.3.36/bin/python"
CBENCH="$BENCH_CACHE/ggml-codec-bench"
mkdir -p "$BENCH_CACHE"
if [ ! -x "$CBENCH" ] || [ "$HERE/ggml-codec-bench.c" -nt "$CBENCH" ]; then
  log "building ggml-codec-bench"
  cc -O2 -std=c11 -I"$SRC/ggml/include" "$HERE/ggml-codec-bench.c" \
    "$(find "$BUILD" -name 'libggml-base.a' | head -1)" -fopenmp -lstdc++ -lm -lpthread -o "$CBENCH"
fi

MODEL=$(bash "$HERE/model.sh")
IMAT="${MODEL%-f16.gguf}.imatrix.gguf"
DATA="$BENCH_CACHE/codec-rows.f32"
IMDATA="$BENCH_CACHE/codec-imatrix.f32"
if [ "$IMATRIX" = 1 ] && [ ! -f "$IMAT" ]; then
  echo "no bench imatrix $IMAT: run scripts/bench-quantize.sh -i first" >&2
  exit 1
fi
N_PER_ROW=$("$PY" - "$MODEL" "$TENSOR" "$ROWS" "$DATA" "$IMAT" "$IMDATA" "$IMATRIX" <<'EOF'
import sys, numpy as np, gguf
model, name, rows, out, imat, imout, want_im = sys.argv[1:]
t = next(t for t in gguf.GGUFReader(model).tensors if t.name == name)
a = np.asarray(t.data)
a = a.reshape(-1, int(t.shape[0]))[: int(rows)].astype("<f4")
a.tofile(out)
if want_im == "1":
    r = gguf.GGUFReader(imat)
    ts = {x.name: x for x in r.tensors}
    s2 = np.asarray(ts[name + ".in_sum2"].data, dtype=np.float32).reshape(-1)
    cnt = float(np.asarray(ts[name + ".counts"].data).reshape(-1)[0])
    (s2 / cnt).astype("<f4").tofile(imout)
print(a.shape[1])
EOF
)
log "rows: $ROWS x $N_PER_ROW of $TENSOR from $(basename "$MODEL")"

if [ -n "$REV" ]; then
  QROOT=$(bash "$HERE/export-rev.sh" "$REV")
  QREV="commit $(git -C "$ROOT" rev-parse --short=10 "$REV^{commit}")"
else
  QROOT=$ROOT
  QREV="work tree at $(git -C "$ROOT" rev-parse --short=10 HEAD)"
  git -C "$ROOT" diff --quiet HEAD -- formats src Cargo.toml Cargo.lock || QREV="$QREV plus uncommitted changes"
fi
log "building the qforge codec bench in $QROOT ($QREV)"
RUST_BENCH=$(cd "$QROOT" && cargo bench --bench codec_throughput --no-run 2>&1 \
  | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
[ -x "$QROOT/$RUST_BENCH" ] && RUST_BENCH="$QROOT/$RUST_BENCH"
[ -x "$RUST_BENCH" ] || { echo "cannot find the codec_throughput bench binary" >&2; exit 1; }

RAW="$BENCH_CACHE/codec-bench.raw"
: >"$RAW"
run_c() { "$CBENCH" "$N_PER_ROW" "$DATA" "$REPS" "$TYPES" "$@" | tee -a "$RAW" >&2; }
run_rust() {
  QFORGE_BENCH_DATA="$DATA" QFORGE_BENCH_N_PER_ROW="$N_PER_ROW" QFORGE_BENCH_TYPES="$TYPES" QFORGE_BENCH_REPS="$REPS" \
    QFORGE_BENCH_IMATRIX="${1:-}" "$RUST_BENCH" \
    | grep -o 'rust .*' | tee -a "$RAW" >&2
}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load $LOAD_BEFORE; $ROUNDS rounds x $REPS reps"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then run_c; run_rust; else run_rust; run_c; fi
  if [ "$IMATRIX" = 1 ]; then
    if [ $((r % 2)) = 1 ]; then run_c "$IMDATA"; run_rust "$IMDATA"; else run_rust "$IMDATA"; run_c "$IMDATA"; fi
  fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
log "load after $LOAD_AFTER; qforge: $QREV"

MD=""
[ "$WRITE_MD" = 1 ] && MD="$ROOT/BENCHMARKS.md"
python3 - "$RAW" "$MD" "$CMDLINE" "$QREV" "$LOAD_BEFORE" "$LOAD_AFTER" "$ROWS x $N_PER_ROW of $TENSOR" <<'EOF'
import sys, statistics
from collections import defaultdict
v = defaultdict(list)
order = []
for line in open(sys.argv[1]):
    impl, ty, im, n, cpu, wall, mcpu, mwall = line.split()
    key = (ty.lower(), im)
    if key not in order:
        order.append(key)
    v[(impl,) + key].append(float(mcpu))
rows = ["| type | imatrix | ggml M weights/s/thread | qforge M weights/s/thread | qforge/ggml |", "|---|:---:|---:|---:|---:|"]
for ty, im in order:
    c = statistics.median(v[("c", ty, im)]) if v[("c", ty, im)] else float("nan")
    r = statistics.median(v[("rust", ty, im)]) if v[("rust", ty, im)] else float("nan")
    rows.append(f"| {ty} | {'yes' if im == 'imatrix' else 'no'} | {c:.1f} | {r:.1f} | **{r / c:.2f}x** |")
table = "\n".join(rows)
print(table)
md, cmd, rev, lb, la, data = sys.argv[2:]
if md:
    import os, time
    begin, end = "<!-- codec-bench:begin -->", "<!-- codec-bench:end -->"
    block = "\n".join([
        begin,
        f"Generated by `scripts/bench/codec-bench.sh` on {time.strftime('%Y-%m-%d %H:%M %Z')}, load average {lb} before and {la} after; "
        f"qforge: {rev}; ggml: llama.cpp 0c1e57098 (libggml-base.a of scripts/build-oracle.sh). Rows: {data} of the bench model. "
        "One thread; medians over rounds of each program's median thread-CPU time per call.",
        "",
        "```",
        cmd,
        "```",
        "",
        table,
        end,
    ])
    text = open(md).read() if os.path.exists(md) else ""
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        text = pre + block + rest.split(end, 1)[1]
    else:
        text = text + ("\n" if text and not text.endswith("\n") else "") + block + "\n"
    open(md, "w").write(text)
    print(f"wrote the table into {md}", file=sys.stderr)
EOF
