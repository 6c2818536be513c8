#!/usr/bin/env bash
# Forward-pass throughput: llama-perplexity vs qforge perplexity, same model, text, context,
# chunks and threads, interleaved runs.
#
#   scripts/bench/perplexity-bench.sh [-n ROUNDS] [-t THREADS] [-c CTX] [-k CHUNKS] [-f TEXT] [MODEL...]
#
#   -n ROUNDS   rounds; each runs llama then qforge (odd rounds) or qforge then llama (even) (default 1)
#   -t THREADS  threads for both tools (default 2)
#   -c CTX      context per chunk (default 128: 16 chunks per batch of 2048 for both tools)
#   -k CHUNKS   chunks of the bench models (default 16); the eval fixture runs all of TEXT
#   -f TEXT     text to score (default /usr/share/common-licenses/GPL-3)
#   -i          importance matrices instead: llama-imatrix vs qforge imatrix (same runs, -o to a temp file)
#   MODEL       fixture | f16 | q8_0 | q4_k_m | a GGUF path (default: fixture f16 q8_0 q4_k_m)
#
# fixture = fixtures/tiny-llama-eval-f16.gguf; f16 = the synthetic bench model of
# scripts/bench/model.sh (492M parameters, 0.98 GB); q8_0 / q4_k_m = that model quantized by the
# pinned llama-quantize (cached next to it in ~/.cache/qforge/bench). Prints one line per run and
# one summary line per model: median wall seconds, CPU seconds (user + sys), tokens/s (scored
# chunks * CTX / wall), peak RSS (GNU time), final PPL of each tool, and the ratios llama/qforge
# (above 1: qforge faster). Needs `cargo build --release -p qforge` and scripts/build-oracle.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=1
THREADS=2
CTX=128
CHUNKS=16
TEXT=/usr/share/common-licenses/GPL-3
MODE=perplexity
while getopts "n:t:c:k:f:i" o; do
  case $o in
    n) ROUNDS=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    c) CTX=$OPTARG ;;
    k) CHUNKS=$OPTARG ;;
    f) TEXT=$OPTARG ;;
    i) MODE=imatrix ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(fixture f16 q8_0 q4_k_m)

ORACLE=$(bash "$ROOT/scripts/build-oracle.sh" 2>/dev/null | tail -1)
LLAMA="$ORACLE/llama-$MODE"
QFORGE="$ROOT/target/release/qforge"
[ -x "$LLAMA" ] || { echo "no llama-perplexity in '$ORACLE'" >&2; exit 1; }
[ -x "$QFORGE" ] || { echo "build qforge first: cargo build --release -p qforge" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

model_path() {
  case $1 in
    fixture) echo "$ROOT/fixtures/tiny-llama-eval-f16.gguf" ;;
    f16) bash "$HERE/model.sh" ;;
    q8_0 | q4_k_m)
      local f16 out ty
      f16=$(bash "$HERE/model.sh")
      ty=$(echo "$1" | tr a-z A-Z)
      out="${f16%-f16.gguf}-$ty.gguf"
      if [ ! -f "$out" ]; then
        echo "[bench] llama-quantize $f16 -> $ty" >&2
        "$ORACLE/llama-quantize" "$f16" "$out" "$ty" "$THREADS" > "$TMP/quantize.log" 2>&1
      fi
      echo "$out" ;;
    *) echo "$1" ;;
  esac
}

# run TOOL MODEL CHUNKS_ARG... -> "wall cpu rss_kb ppl"
run() {
  local tool=$1 model=$2; shift 2
  local out="$TMP/out" tv="$TMP/time"
  local extra=()
  [ "$MODE" = imatrix ] && extra=(-o "$TMP/imatrix.gguf")
  if [ "$tool" = llama ]; then
    /usr/bin/time -v -o "$tv" "$LLAMA" -m "$model" -f "$TEXT" -c "$CTX" -t "$THREADS" "${extra[@]}" "$@" > "$out" 2>&1
  else
    /usr/bin/time -v -o "$tv" "$QFORGE" -j "$THREADS" "$MODE" -m "$model" -f "$TEXT" -c "$CTX" "${extra[@]}" "$@" > "$out" 2>&1
  fi
  local wall cpu rss ppl
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$tv")
  cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.2f", u+s}' "$tv")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tv")
  ppl=$(grep -o 'PPL = [0-9.]*' "$out" | tail -1 | cut -d' ' -f3)
  echo "$wall $cpu $rss ${ppl:-?}"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# mode: $MODE"
echo "# scripts/bench/perplexity-bench.sh -n $ROUNDS -t $THREADS -c $CTX -k $CHUNKS -f $TEXT ${MODELS[*]}"
echo "# qforge $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- calibration src || echo +changes); llama.cpp $(basename "$(dirname "$ORACLE")")"
printf '%-34s %-6s %8s %8s %9s %9s %12s\n' model tool wall_s cpu_s tok/s rss_MiB ppl
for name in "${MODELS[@]}"; do
  model=$(model_path "$name")
  cat "$model" > /dev/null # page cache
  if [ "$name" = fixture ]; then
    chunk_args=()
    n_tok=$("$QFORGE" perplexity -m "$model" -f "$TEXT" -c "$CTX" --chunks 1 --json 2>/dev/null |
      grep -o '"n_tokens": [0-9]*' | grep -o '[0-9]*$')
    n_chunk=$((n_tok / CTX))
  else
    chunk_args=(--chunks "$CHUNKS")
    n_chunk=$CHUNKS
  fi
  tokens=$((n_chunk * CTX))
  : > "$TMP/llama.res"
  : > "$TMP/qforge.res"
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then order="llama qforge"; else order="qforge llama"; fi
    for tool in $order; do
      res=$(run "$tool" "$model" "${chunk_args[@]}")
      echo "$res" >> "$TMP/$tool.res"
      read -r wall cpu rss ppl <<< "$res"
      printf '%-34s %-6s %8.2f %8.2f %9.1f %9.0f %12s\n' "$(basename "$model")" "$tool" "$wall" "$cpu" \
        "$(echo "$tokens / $wall" | bc -l)" "$(echo "$rss / 1024" | bc -l)" "$ppl"
    done
  done
  lw=$(cut -d' ' -f1 "$TMP/llama.res" | median); qw=$(cut -d' ' -f1 "$TMP/qforge.res" | median)
  lc=$(cut -d' ' -f2 "$TMP/llama.res" | median); qc=$(cut -d' ' -f2 "$TMP/qforge.res" | median)
  lr=$(cut -d' ' -f3 "$TMP/llama.res" | median); qr=$(cut -d' ' -f3 "$TMP/qforge.res" | median)
  printf 'SUMMARY %s: %d tokens (%d chunks of %d), %d threads; llama %.2f s wall %.2f s cpu %.1f tok/s %.0f MiB; qforge %.2f s wall %.2f s cpu %.1f tok/s %.0f MiB; llama/qforge wall %.2fx cpu %.2fx; PPL llama %s qforge %s\n' \
    "$name" "$tokens" "$n_chunk" "$CTX" "$THREADS" \
    "$lw" "$lc" "$(echo "$tokens / $lw" | bc -l)" "$(echo "$lr / 1024" | bc -l)" \
    "$qw" "$qc" "$(echo "$tokens / $qw" | bc -l)" "$(echo "$qr / 1024" | bc -l)" \
    "$(echo "$lw / $qw" | bc -l)" "$(echo "$lc / $qc" | bc -l)" \
    "$(tail -1 "$TMP/llama.res" | cut -d' ' -f4)" "$(tail -1 "$TMP/qforge.res" | cut -d' ' -f4)"
done
