#!/usr/bin/env bash
# HF -> GGUF conversion: the pinned convert_hf_to_gguf.py (+ llama-quantize for quantized types)
# vs qforge convert, same checkpoint, one after the other, under GNU time.
#
#   scripts/bench/convert-bench.sh [-L LAYERS] [-t THREADS] [TYPE...]
#
#   -L LAYERS   layers of the synthetic checkpoint (default 24: 1.1B parameters, 2.1 GiB of F16)
#   -t THREADS  threads for qforge and llama-quantize (default 2; the converter is single-threaded)
#   TYPE        f16 | q8_0 | Q4_K_M ... (default: f16 q8_0 Q4_K_M)
#
# The checkpoint (scripts/bench/make_hf_bench_model.py: Llama, hidden 2048, ff 5632, 16/4 heads,
# F16 shards of 1000 MiB) is cached in ~/.cache/qforge/bench. For f16/q8_0 the reference is
# `convert_hf_to_gguf.py --outtype T`; for other types it is `--outtype f32` followed by
# `llama-quantize` (times and CPU added, peak RSS the larger of the two). Prints wall, CPU and peak
# RSS of both sides, the ratios reference/qforge, and whether the outputs are byte-identical.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAYERS=24
THREADS=2
while getopts "L:t:" o; do
  case $o in
    L) LAYERS=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
TYPES=("$@")
[ ${#TYPES[@]} -gt 0 ] || TYPES=(f16 q8_0 Q4_K_M)

CACHE="${QFORGE_CACHE:-$HOME/.cache/qforge}"
ORACLE=$(bash "$ROOT/scripts/build-oracle.sh" 2>/dev/null | tail -1)
PY="$CACHE/venv-convert/bin/python"
SRC="$CACHE/llama_cpp_python-0.3.36/vendor/llama.cpp"
QFORGE="$ROOT/target/release/qforge"
[ -x "$QFORGE" ] || { echo "build qforge first: cargo build --release -p qforge" >&2; exit 1; }
[ -x "$PY" ] || { echo "no converter venv at $PY: run scripts/build-oracle.sh" >&2; exit 1; }

KEY=$( (cat "$HERE/make_hf_bench_model.py"; echo "$LAYERS") | sha256sum | cut -c1-12)
MODEL="$CACHE/bench/hf-llama-$KEY"
if [ ! -f "$MODEL/config.json" ]; then
  echo "[bench] generating $MODEL ($LAYERS layers)" >&2
  rm -rf "$MODEL.tmp"
  "$PY" "$HERE/make_hf_bench_model.py" "$MODEL.tmp" --layers "$LAYERS" >&2
  mv "$MODEL.tmp" "$MODEL"
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/convert-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# run NAME CMD... : runs under GNU time, leaves "wall cpu rss_kib" in $TMP/NAME.t
run() {
  local name=$1; shift
  /usr/bin/time -f '%e %U %S %M' -o "$TMP/$name.time" "$@" > "$TMP/$name.log" 2>&1 || {
    echo "[bench] $name failed:" >&2; tail -5 "$TMP/$name.log" >&2; exit 1; }
  awk '{printf "%.2f %.2f %d\n", $1, $2 + $3, $4}' "$TMP/$name.time" > "$TMP/$name.t"
}
CONVERT=(env PYTHONPATH="$SRC/gguf-py" "$PY" "$SRC/convert_hf_to_gguf.py" "$MODEL")

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
echo "| type | reference wall / CPU / peak RSS | qforge wall / CPU / peak RSS | ratio wall / CPU / RSS | identical |"
echo "|---|---|---|---|---|"
for ty in "${TYPES[@]}"; do
  lower=$(echo "$ty" | tr A-Z a-z)
  case $lower in
    f16 | q8_0 | bf16 | f32)
      run ref "${CONVERT[@]}" --outtype "$lower" --outfile "$TMP/ref.gguf"
      read -r rw rc rr < "$TMP/ref.t" ;;
    *)
      run ref1 "${CONVERT[@]}" --outtype f32 --outfile "$TMP/ref-f32.gguf"
      run ref2 "$ORACLE/llama-quantize" "$TMP/ref-f32.gguf" "$TMP/ref.gguf" "$ty" "$THREADS"
      rm -f "$TMP/ref-f32.gguf"
      read -r w1 c1 r1 < "$TMP/ref1.t"; read -r w2 c2 r2 < "$TMP/ref2.t"
      rw=$(echo "$w1 + $w2" | bc); rc=$(echo "$c1 + $c2" | bc); rr=$(( r1 > r2 ? r1 : r2 )) ;;
  esac
  run ours "$QFORGE" -j "$THREADS" convert "$MODEL" -o "$TMP/ours.gguf" --type "$ty"
  read -r qw qc qr < "$TMP/ours.t"
  same=no; cmp -s "$TMP/ref.gguf" "$TMP/ours.gguf" && same=yes
  printf '| %s | %.1f s / %.1f s / %d MiB | %.1f s / %.1f s / %d MiB | %.1fx / %.1fx / %.1fx | %s |\n' \
    "$ty" "$rw" "$rc" $((rr / 1024)) "$qw" "$qc" $((qr / 1024)) \
    "$(echo "$rw / $qw" | bc -l)" "$(echo "$rc / $qc" | bc -l)" "$(echo "$rr / $qr" | bc -l)" "$same"
  rm -f "$TMP/ref.gguf" "$TMP/ours.gguf"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
