#!/usr/bin/env python3
"""Writes the synthetic llama-architecture F16 model that scripts/bench-quantize.sh times.

Same approach as fixtures/make_fixtures.py (the layout of llama.cpp's convert_hf_to_gguf.py for a
Llama checkpoint: same keys, key types, tensor names; F16 2-D weights, F32 norms), at a realistic
size: by default n_embd 2048, n_ff 5632, 16 heads / 4 KV heads (head_dim 128), 8 layers, a
32000-token SentencePiece-style vocabulary: 487M parameters, 0.98 GB. Weights are gaussian
(std 0.02) with two hot input channels per matrix (x4) and about 0.1% outlier values of
magnitude 0.1 to 0.5; norms are 1 + N(0, 0.05).

Deterministic (numpy default_rng with a fixed seed, no timestamps). Run with the gguf-py 0.19.0
venv that scripts/build-oracle.sh creates:

    ~/.cache/qforge/venv-gguf-0.3.36/bin/python scripts/bench/make_bench_model.py OUT.gguf [--layers N] ...

Tensors are generated one at a time while writing (GGUFWriter's add_tensor_info + write_tensor_data),
so peak memory is about one tensor, not the whole model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import gguf

SEED = 20250101
ARCH = "llama"
RMS_EPS = 1e-5
ROPE_BASE = 10000.0


def vocab(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    """<unk>, <s>, </s>, the 256 byte tokens, then distinct word pieces with falling scores."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [int(gguf.TokenType.UNKNOWN), int(gguf.TokenType.CONTROL), int(gguf.TokenType.CONTROL)]
    types += [int(gguf.TokenType.BYTE)] * 256
    n_rest = n_vocab - len(tokens)
    # Base-26 letter strings, each prefixed by the SentencePiece space marker: distinct and printable.
    letters = "abcdefghijklmnopqrstuvwxyz"
    pieces = []
    i = 0
    while len(pieces) < n_rest:
        s, k = "", i
        while True:
            s = letters[k % 26] + s
            k = k // 26 - 1
            if k < 0:
                break
        pieces.append("\u2581" + s)
        i += 1
    tokens += pieces
    types += [int(gguf.TokenType.NORMAL)] * n_rest
    scores = [0.0] * 259 + [-float(i) for i in range(n_rest)]
    assert len(tokens) == n_vocab and len(set(tokens)) == n_vocab
    return tokens, scores, types


def weight(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """A (rows, cols) F16 matrix: N(0, 0.02), two hot input channels (x4), ~0.1% outliers."""
    w = rng.standard_normal((rows, cols), dtype=np.float32)
    w *= np.float32(0.02)
    hot = rng.choice(cols, size=2, replace=False)
    w[:, hot] *= np.float32(4.0)
    n_out = max(1, rows * cols // 1000)
    idx = rng.integers(0, rows * cols, size=n_out)
    mag = rng.uniform(0.1, 0.5, size=n_out).astype(np.float32)
    sign = np.where(rng.random(n_out) < 0.5, -1.0, 1.0).astype(np.float32)
    w.reshape(-1)[idx] = mag * sign
    return w.astype(np.float16)


def norm(rng: np.random.Generator, n: int) -> np.ndarray:
    return (np.float32(1.0) + rng.standard_normal(n, dtype=np.float32) * np.float32(0.05)).astype(np.float32)


def tensor_list(a: argparse.Namespace) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, numpy shape, kind) in write order; kind is 'w' (F16 matrix) or 'n' (F32 norm)."""
    head_dim = a.embd // a.heads
    n_kv = a.heads_kv * head_dim
    out = [("token_embd.weight", (a.vocab, a.embd), "w")]
    for i in range(a.layers):
        p = f"blk.{i}."
        out += [
            (p + "attn_norm.weight", (a.embd,), "n"),
            (p + "attn_q.weight", (a.embd, a.embd), "w"),
            (p + "attn_k.weight", (n_kv, a.embd), "w"),
            (p + "attn_v.weight", (n_kv, a.embd), "w"),
            (p + "attn_output.weight", (a.embd, a.embd), "w"),
            (p + "ffn_norm.weight", (a.embd,), "n"),
            (p + "ffn_gate.weight", (a.ff, a.embd), "w"),
            (p + "ffn_up.weight", (a.ff, a.embd), "w"),
            (p + "ffn_down.weight", (a.embd, a.ff), "w"),
        ]
    out += [("output_norm.weight", (a.embd,), "n"), ("output.weight", (a.vocab, a.embd), "w")]
    return out


def write(path: Path, a: argparse.Namespace) -> int:
    head_dim = a.embd // a.heads
    tl = tensor_list(a)
    n_params = sum(int(np.prod(s)) for _, s, _ in tl)
    w = gguf.GGUFWriter(str(path), ARCH)
    w.add_type("model")
    w.add_name("qforge bench llama")
    w.add_basename("qforge-bench-llama")
    w.add_size_label(f"{n_params / 1e9:.2f}B")
    w.add_license("mit")
    w.add_block_count(a.layers)
    w.add_context_length(4096)
    w.add_embedding_length(a.embd)
    w.add_feed_forward_length(a.ff)
    w.add_head_count(a.heads)
    w.add_head_count_kv(a.heads_kv)
    w.add_rope_freq_base(ROPE_BASE)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_vocab_size(a.vocab)
    w.add_rope_dimension_count(head_dim)
    tokens, scores, types = vocab(a.vocab)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for name, shape, kind in tl:
        dt = np.float16 if kind == "w" else np.float32
        nbytes = int(np.prod(shape)) * np.dtype(dt).itemsize
        w.add_tensor_info(name, shape, np.dtype(dt), nbytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(SEED)
    for name, shape, kind in tl:
        t = weight(rng, *shape) if kind == "w" else norm(rng, shape[0])
        w.write_tensor_data(t)
    w.close()
    return n_params


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--embd", type=int, default=2048)
    ap.add_argument("--ff", type=int, default=5632)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--heads-kv", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=32000)
    a = ap.parse_args()
    tmp = a.out.with_name(a.out.name + ".part")
    n = write(tmp, a)
    tmp.rename(a.out)
    print(f"{a.out}: {n} parameters", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
