#!/usr/bin/env python3
"""Write a synthetic Llama Hugging Face checkpoint for the convert benchmarks.

    make_hf_bench_model.py OUT_DIR [--layers N] [--hidden H] [--ff F] [--heads A] [--heads-kv K] [--shard-mb S]

F16 safetensors shards (written one at a time, so generation needs one shard of memory), a
model.safetensors.index.json, config.json, and the SentencePiece tokenizer of
fixtures/hf/llama2 (vocab 768). Deterministic (numpy default_rng, fixed seed). Needs numpy and
safetensors (the converter venv of scripts/build-oracle.sh has both).
"""
import argparse
import json
import os
import shutil

import numpy as np
from safetensors.numpy import save_file

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--layers", type=int, default=24)
ap.add_argument("--hidden", type=int, default=2048)
ap.add_argument("--ff", type=int, default=5632)
ap.add_argument("--heads", type=int, default=16)
ap.add_argument("--heads-kv", type=int, default=4)
ap.add_argument("--shard-mb", type=int, default=1000)
a = ap.parse_args()

here = os.path.dirname(os.path.abspath(__file__))
tok_src = os.path.join(here, "..", "..", "fixtures", "hf", "llama2")
vocab = 768
head_dim = a.hidden // a.heads
rng = np.random.default_rng(20261123)


def w(rows, cols):
    return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)


def tensors():
    yield "model.embed_tokens.weight", lambda: w(vocab, a.hidden)
    for i in range(a.layers):
        p = f"model.layers.{i}."
        yield p + "input_layernorm.weight", lambda: np.ones(a.hidden, dtype=np.float16)
        yield p + "self_attn.q_proj.weight", lambda: w(a.hidden, a.hidden)
        yield p + "self_attn.k_proj.weight", lambda: w(a.heads_kv * head_dim, a.hidden)
        yield p + "self_attn.v_proj.weight", lambda: w(a.heads_kv * head_dim, a.hidden)
        yield p + "self_attn.o_proj.weight", lambda: w(a.hidden, a.hidden)
        yield p + "post_attention_layernorm.weight", lambda: np.ones(a.hidden, dtype=np.float16)
        yield p + "mlp.gate_proj.weight", lambda: w(a.ff, a.hidden)
        yield p + "mlp.up_proj.weight", lambda: w(a.ff, a.hidden)
        yield p + "mlp.down_proj.weight", lambda: w(a.hidden, a.ff)
    yield "model.norm.weight", lambda: np.ones(a.hidden, dtype=np.float16)
    yield "lm_head.weight", lambda: w(vocab, a.hidden)


os.makedirs(a.out, exist_ok=True)
shards, cur, cur_bytes, total = [], {}, 0, 0
for name, make in tensors():
    t = make()
    if cur and cur_bytes + t.nbytes > a.shard_mb << 20:
        shards.append(cur)
        path = os.path.join(a.out, f"shard-{len(shards)}.tmp")
        save_file(cur, path)
        cur, cur_bytes = {}, 0
    cur[name] = t
    cur_bytes += t.nbytes
    total += t.nbytes
if cur:
    shards.append(cur)
    save_file(cur, os.path.join(a.out, f"shard-{len(shards)}.tmp"))
n = len(shards)
weight_map = {}
for i, sh in enumerate(shards, 1):
    final = f"model-{i:05d}-of-{n:05d}.safetensors"
    os.replace(os.path.join(a.out, f"shard-{i}.tmp"), os.path.join(a.out, final))
    for name in sh:
        weight_map[name] = final
with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
config = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
    "hidden_size": a.hidden, "intermediate_size": a.ff, "num_hidden_layers": a.layers,
    "num_attention_heads": a.heads, "num_key_value_heads": a.heads_kv, "head_dim": head_dim,
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
    "rope_scaling": None, "tie_word_embeddings": False, "torch_dtype": "float16",
    "vocab_size": vocab, "bos_token_id": 1, "eos_token_id": 2,
}
with open(os.path.join(a.out, "config.json"), "w") as f:
    json.dump(config, f, indent=2)
for fn in ("tokenizer.model", "tokenizer_config.json", "generation_config.json"):
    shutil.copy(os.path.join(tok_src, fn), os.path.join(a.out, fn))
print(f"{a.out}: {total / 2**30:.2f} GiB in {n} shards")
