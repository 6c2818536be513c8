#!/usr/bin/env bash
# Fetches and builds the pinned llama.cpp (commit 0c1e57098, vendored in the PyPI source
# package llama-cpp-python==0.3.36) and installs gguf-py from the same tree.
# Everything is cached under ~/.cache/qforge; a second run is a no-op.
# Prints the directory holding the oracle binaries on its last line.
set -euo pipefail

PKG_VERSION=0.3.36
PKG_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
PKG_URL="https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/llama_cpp_python-${PKG_VERSION}.tar.gz"
COMMIT=0c1e57098
TARGETS=(llama-quantize llama-perplexity llama-imatrix llama-tokenize llama-gguf-split)

CACHE="${QFORGE_CACHE:-$HOME/.cache/qforge}"
SRC="$CACHE/llama_cpp_python-${PKG_VERSION}/vendor/llama.cpp"
# ggml is compiled for a fixed instruction set, x86-64 with AVX2, FMA and F16C (no AVX512, no
# AVX-VNNI), not for the build machine (GGML_NATIVE): its float summation order depends on the
# kernels compiled in, and qforge's CPU backend reproduces the AVX2 kernels bit for bit, so the
# oracle must be the same on every machine that runs the tests.
ISA=avx2
BUILD="$CACHE/llama.cpp-${COMMIT}-${ISA}"
BIN="$BUILD/bin"

log() { printf '[build-oracle] %s\n' "$*" >&2; }

mkdir -p "$CACHE"
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  tarball="$CACHE/llama_cpp_python-${PKG_VERSION}.tar.gz"
  if [ ! -f "$tarball" ]; then
    log "downloading llama-cpp-python ${PKG_VERSION} source"
    curl -fsSL --retry 3 -o "$tarball.part" "$PKG_URL"
    mv "$tarball.part" "$tarball"
  fi
  echo "${PKG_SHA256}  $tarball" | sha256sum -c --quiet -
  tar -xzf "$tarball" -C "$CACHE"
fi

if ! command -v cmake >/dev/null 2>&1; then
  log "installing cmake"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq cmake >/dev/null
fi

for f in avx2 fma f16c; do
  grep -m1 '^flags' /proc/cpuinfo | grep -qw "$f" \
    || { log "this CPU lacks $f: the oracle (and the exact-match tests) need x86-64 with AVX2, FMA and F16C"; exit 1; }
done

have_all=1
for t in "${TARGETS[@]}" ggml-codec llama-logits; do [ -x "$BIN/$t" ] || have_all=0; done
if [ "$have_all" = 0 ]; then
  log "building llama.cpp ${COMMIT} (${ISA}) into $BUILD (several minutes)"
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
    -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
    -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF \
    -DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_COMMIT="$COMMIT" \
    -DCMAKE_RUNTIME_OUTPUT_DIRECTORY="$BIN" >"$BUILD.configure.log" 2>&1 \
    || { cat "$BUILD.configure.log" >&2; exit 1; }
  cmake --build "$BUILD" -j"$(nproc)" --target "${TARGETS[@]}" >"$BUILD.build.log" 2>&1 \
    || { tail -50 "$BUILD.build.log" >&2; exit 1; }
fi

# ggml-codec: our harness around the pinned ggml's block codecs (scripts/oracle/ggml-codec.c).
HERE=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$BIN/ggml-codec" ] || [ "$HERE/oracle/ggml-codec.c" -nt "$BIN/ggml-codec" ]; then
  log "building ggml-codec"
  cc -O2 -std=c11 -I"$SRC/ggml/include" "$HERE/oracle/ggml-codec.c" \
    $(find "$BUILD" -name 'libggml-base.a' | head -1) -fopenmp -lstdc++ -lm -lpthread -o "$BIN/ggml-codec"
fi

# llama-logits: built last; tests take a directory as the oracle once it has llama-logits.
# Our harness around the pinned libllama (scripts/oracle/llama-logits.c): the logits of
# one token sequence with llama-perplexity's default context settings.
if [ ! -x "$BIN/llama-logits" ] || [ "$HERE/oracle/llama-logits.c" -nt "$BIN/llama-logits" ]; then
  log "building llama-logits"
  cc -O2 -std=c11 -I"$SRC/include" -I"$SRC/ggml/include" "$HERE/oracle/llama-logits.c" \
    "$BUILD/src/libllama.a" "$BUILD/ggml/src/libggml.a" "$BUILD/ggml/src/libggml-cpu.a" \
    "$BUILD/ggml/src/libggml-base.a" -fopenmp -lstdc++ -lm -lpthread -o "$BIN/llama-logits"
fi

# gguf-py from the same tree, in a virtual environment of its own.
VENV="$CACHE/venv-gguf-${PKG_VERSION}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import gguf, numpy' 2>/dev/null; then
  log "installing gguf-py into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "numpy<3" "$SRC/gguf-py"
fi

# The pinned convert_hf_to_gguf.py's requirements (requirements/requirements-convert_hf_to_gguf.txt
# of the same tree), for the `qforge convert` parity tests. The file's extra index (PyTorch's CPU
# wheels) is not used: torch comes from PyPI (its CUDA libraries are installed but only the CPU is
# used). gguf-py is not installed here: the tests run the converter with PYTHONPATH=$SRC/gguf-py.
# About 2 minutes and 5 GB on a fresh machine; the stamp records the exact requirement list.
CONVERT_VENV="$CACHE/venv-convert"
CONVERT_REQS=("torch==2.11.0" "numpy~=2.2.6" "sentencepiece>=0.1.98,<0.3.0" "transformers==4.57.6"
  "protobuf>=4.21.0,<5.0.0" "safetensors")
CONVERT_STAMP="$CONVERT_VENV/.qforge-stamp"
if [ "${QFORGE_SKIP_CONVERT_VENV:-}" = "" ] \
  && [ "$(cat "$CONVERT_STAMP" 2>/dev/null)" != "${CONVERT_REQS[*]}" ]; then
  log "installing the converter's requirements into $CONVERT_VENV (about 2 minutes)"
  rm -rf "$CONVERT_VENV"
  python3 -m venv "$CONVERT_VENV"
  "$CONVERT_VENV/bin/pip" install -q "${CONVERT_REQS[@]}"
  "$CONVERT_VENV/bin/python" -c 'import torch, transformers, sentencepiece, safetensors, google.protobuf, numpy'
  printf '%s' "${CONVERT_REQS[*]}" >"$CONVERT_STAMP"
fi
log "converter venv: $CONVERT_VENV/bin/python"

echo "$BIN"
