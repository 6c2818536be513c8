#!/usr/bin/env bash
# Where the time goes: `perf record` of llama-quantize and qforge, one thread each, on the bench
# model, per type; prints each tool's hottest functions (self time, flat profile).
#
#   scripts/bench/profile.sh [-T TYPES] [-t THREADS] [-N TOP] [-q QFORGE_BIN] [-I IMATRIX] [-o TOOLS]
#
#   -T TYPES   llama-quantize type names (default Q8_0,Q4_K_M,Q6_K,IQ4_XS)
#   -t THREADS threads for both tools (default 1: self time is then CPU time of one core)
#   -N TOP     functions listed per run (default 12)
#   -q BIN     the qforge binary (default target/release/qforge of the work tree, built first)
#   -I FILE    pass --imatrix FILE to both tools
#   -o TOOLS   which tools to profile: llama,qforge (default), llama or qforge
#
# Needs perf (apt-get install linux-perf) and the bench model (scripts/bench-quantize.sh makes it).
# Reports go to ${QFORGE_CACHE:-~/.cache/qforge}/bench/profile/TOOL-TYPE.txt as well as stdout.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE="${QFORGE_CACHE:-$HOME/.cache/qforge}"
OUT="$CACHE/bench/profile"
TYPES=Q8_0,Q4_K_M,Q6_K,IQ4_XS
THREADS=1
TOP=12
QFORGE=
IMATRIX=()
TOOLS=llama,qforge
while getopts "T:t:N:q:I:o:h" opt; do
  case "$opt" in
    T) TYPES=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    N) TOP=$OPTARG ;;
    q) QFORGE=$OPTARG ;;
    I) IMATRIX=(--imatrix "$OPTARG") ;;
    o) TOOLS=$OPTARG ;;
    h) sed -n '2,15p' "$0"; exit 0 ;;
    *) sed -n '2,15p' "$0" >&2; exit 2 ;;
  esac
done
command -v perf >/dev/null || { echo "perf is missing: apt-get install -y linux-perf" >&2; exit 1; }
BIN=$(bash "$ROOT/scripts/build-oracle.sh" | tail -1)
if [ -z "$QFORGE" ]; then
  (cd "$ROOT" && cargo build --release --quiet)
  QFORGE="$ROOT/target/release/qforge"
fi
MODEL=$(bash "$HERE/model.sh")
mkdir -p "$OUT"
SUF=""
[ ${#IMATRIX[@]} -gt 0 ] && SUF="+imatrix"
tmp="/dev/shm/qforge-profile-$$.gguf"
trap 'rm -f "$tmp"' EXIT
for ty in ${TYPES//,/ }; do
  for tool in ${TOOLS//,/ }; do
    if [ "$tool" = llama ]; then cmd=("$BIN/llama-quantize" "${IMATRIX[@]}"); else cmd=("$QFORGE" quantize "${IMATRIX[@]}"); fi
    data="$OUT/$tool-$ty$SUF.perf.data"
    perf record -q -F 499 -o "$data" -- "${cmd[@]}" "$MODEL" "$tmp" "$ty" "$THREADS" >/dev/null 2>&1
    rm -f "$tmp"
    {
      echo "== $tool $ty$SUF, $THREADS thread(s), load $(cut -d' ' -f1-3 /proc/loadavg), $([ "$tool" = llama ] && echo "llama.cpp 0c1e57098" || echo "$QFORGE")"
      rep=$(perf report -i "$data" --no-children --sort symbol --stdio 2>/dev/null || true)
      grep -E '^ +[0-9.]+%' <<<"$rep" | sed -E 's/[ -]+$//' | awk -v top="$TOP" 'NR <= top'
      ev=$(sed -n "s/^# Samples: .* of event '\(.*\)'/\1/p" <<<"$rep" | awk 'NR == 1')
      cnt=$(sed -n 's/^# Event count (approx.): \([0-9]*\)/\1/p' <<<"$rep" | awk 'NR == 1')
      case "$ev" in
        cpu-clock*|task-clock*) awk -v c="$cnt" 'BEGIN { printf "   (%.2f CPU seconds sampled)\n", c / 1e9 }' ;;
        *) echo "   ($cnt events of $ev)" ;;
      esac
    } | tee "$OUT/$tool-$ty$SUF.txt"
  done
done
