#!/usr/bin/env python3
"""Records the pinned llama-quantize's per-tensor type choices as goldens for qforge's recipe port.

For a set of small synthetic GGUF models (built here with gguf-py; the types depend only on
names, shapes and metadata, so every tensor has 2 rows of zeros) this runs the pinned
`llama-quantize` (llama.cpp 0c1e57098, built by scripts/build-oracle.sh) for many file types
and options, reads the type it reports for every tensor, and writes one JSON file per model to
fixtures/recipe/:

    {"model": NAME,
     "metadata": [[key, type, value], ...],        # the model's GGUF metadata (no tokenizer)
     "tensors": [[name, ggml type, [ne0, ...]], ...],  # in file order
     "order": [i, ...],                            # llama-quantize's processing order, as
                                                   # indices into "tensors"
     "runs": [{"args": [...],                      # llama-quantize argv after the binary;
                                                   # "MODEL" / "IMATRIX" / "TTFILE" stand for paths
               "tensor_type_file": "...",          # contents of TTFILE, when used
               "imatrix": {name: n_values, ...},   # entries of IMATRIX, when used
               "types": "f32 q4_K*3 q6_K ...",     # run-length coded types, processing order
               "n_fallback": N, "will_require_imatrix": bool}
              | {"args": [...], ..., "error": MESSAGE, "error_tensor": NAME or null}]}

Most runs use `--dry-run`, which prints the chosen type of every tensor without converting
anything. Runs without `--dry-run` are there for the errors llama-quantize only raises while
converting (requantization, imatrix entry sizes, missing imatrix entries); those models carry
real (zero) data, so the runs are quick.

It also writes fixtures/recipe/quantize-help.txt: the "allowed quantization types" table of
llama-quantize's usage text.

Run with the gguf-py venv that scripts/build-oracle.sh creates:

    ~/.cache/qforge/venv-gguf-0.3.36/bin/python scripts/gen-recipe-goldens.py

Options: --quantize PATH (default: ~/.cache/qforge/llama.cpp-0c1e57098-*/bin/llama-quantize),
--out DIR (default: fixtures/recipe next to this script's repository), --keep DIR (keep the
generated models there instead of a temporary directory).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import gguf

T = gguf.GGMLQuantizationType
ROWS = 2  # rows of every 2-D tensor; types never depend on it

ALL_FTYPES = [
    "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q2_K_S", "Q3_K_S", "Q3_K_M", "Q3_K_L",
    "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M",
    "IQ1_S", "IQ1_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M", "IQ4_NL", "IQ4_XS", "TQ1_0",
    "TQ2_0", "MXFP4_MOE", "Q1_0", "Q2_0", "F16", "BF16", "F32", "COPY",
]
# file types whose rules read has_imatrix, plus a few that do not (as a control)
IMATRIX_FTYPES = ["IQ3_XXS", "IQ4_NL", "IQ4_XS", "Q4_0", "Q5_0", "Q4_K_M", "IQ2_XXS", "Q2_K_S"]
# file types whose attn_v rules the 70B classification can change
BIG_FTYPES = [
    "Q2_K", "Q2_K_S", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_M", "IQ3_XXS",
    "IQ3_XS", "IQ3_S", "IQ3_M", "IQ4_XS", "IQ2_M", "Q8_0",
]


# ---------------------------------------------------------------------------------------------
# models


class Model:
    def __init__(self, name: str, arch: str):
        self.name = name
        self.arch = arch
        self.kvs: list[tuple[str, str, object]] = []
        self.tensors: list[tuple[str, int, list[int]]] = []  # name, ggml type, ne

    def kv(self, key: str, typ: str, value: object) -> "Model":
        self.kvs.append((key.replace("{arch}", self.arch), typ, value))
        return self

    def t(self, name: str, ne: list[int], typ: int = T.F16) -> "Model":
        self.tensors.append((name, int(typ), list(ne)))
        return self

    def write(self, path: Path) -> None:
        w = gguf.GGUFWriter(str(path), self.arch)
        for key, typ, value in self.kvs:
            if typ == "u32":
                w.add_uint32(key, value)
            elif typ == "i32":
                w.add_int32(key, value)
            elif typ == "f32":
                w.add_float32(key, value)
            elif typ == "str":
                w.add_string(key, value)
            elif typ == "arr_i32":
                w.add_key_value(key, value, gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.INT32)
            elif typ == "arr_u32":
                w.add_key_value(key, value, gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.UINT32)
            else:
                raise ValueError(typ)
        for name, typ, ne in self.tensors:
            shape = tuple(reversed(ne))
            if typ == T.F32:
                w.add_tensor(name, np.zeros(shape, dtype=np.float32))
            elif typ == T.F16:
                w.add_tensor(name, np.zeros(shape, dtype=np.float16))
            else:
                block, size = gguf.GGML_QUANT_SIZES[T(typ)]
                row_bytes = ne[0] // block * size
                byte_shape = shape[:-1] + (row_bytes,)
                w.add_tensor(name, np.zeros(byte_shape, dtype=np.uint8), raw_dtype=T(typ))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    def metadata_json(self) -> list:
        return [[k, typ, v] for k, typ, v in [("general.architecture", "str", self.arch)] + self.kvs]

    def tensors_json(self) -> list:
        return [[n, ggml_name(typ), ne] for n, typ, ne in self.tensors]


def llama_like(name: str, arch: str, n_layer: int, n_head: int, n_head_kv: int, *, n_embd=256,
               n_ff=512, tied=False, eps_key="attention.layer_norm_rms_epsilon",
               attn_bias=False, rope_freqs=False) -> Model:
    m = Model(name, arch)
    m.kv("{arch}.context_length", "u32", 256).kv("{arch}.embedding_length", "u32", n_embd)
    m.kv("{arch}.block_count", "u32", n_layer).kv("{arch}.feed_forward_length", "u32", n_ff)
    m.kv("{arch}.attention.head_count", "u32", n_head).kv("{arch}.attention.head_count_kv", "u32", n_head_kv)
    m.kv("{arch}." + eps_key, "f32", 1e-5)
    head_dim = n_embd // n_head
    m.t("token_embd.weight", [n_embd, ROWS])
    m.t("output_norm.weight", [n_embd], T.F32)
    if not tied:
        m.t("output.weight", [n_embd, ROWS])
    if rope_freqs:
        m.t("rope_freqs.weight", [head_dim // 2], T.F32)
    for i in range(n_layer):
        p = f"blk.{i}."
        m.t(p + "attn_norm.weight", [n_embd], T.F32)
        m.t(p + "attn_q.weight", [n_embd, ROWS])
        m.t(p + "attn_k.weight", [n_embd, ROWS])
        m.t(p + "attn_v.weight", [n_embd, ROWS])
        if attn_bias:
            m.t(p + "attn_q.bias", [n_embd], T.F32)
            m.t(p + "attn_k.bias", [head_dim * n_head_kv], T.F32)
            m.t(p + "attn_v.bias", [head_dim * n_head_kv], T.F32)
        m.t(p + "attn_output.weight", [n_embd, ROWS])
        m.t(p + "ffn_norm.weight", [n_embd], T.F32)
        m.t(p + "ffn_gate.weight", [n_embd, ROWS])
        m.t(p + "ffn_up.weight", [n_embd, ROWS])
        m.t(p + "ffn_down.weight", [n_ff, ROWS])
    return m


def moe(name: str, n_layer: int, n_head: int, n_head_kv: int, n_expert: int, *, shared=False,
        extra: list[tuple[str, list[int]]] = ()) -> Model:
    m = Model(name, "llama")
    m.kv("{arch}.context_length", "u32", 256).kv("{arch}.embedding_length", "u32", 256)
    m.kv("{arch}.block_count", "u32", n_layer).kv("{arch}.feed_forward_length", "u32", 512)
    m.kv("{arch}.attention.head_count", "u32", n_head).kv("{arch}.attention.head_count_kv", "u32", n_head_kv)
    m.kv("{arch}.attention.layer_norm_rms_epsilon", "f32", 1e-5)
    m.kv("{arch}.expert_count", "u32", n_expert).kv("{arch}.expert_used_count", "u32", 2)
    m.t("token_embd.weight", [256, ROWS]).t("output_norm.weight", [256], T.F32).t("output.weight", [256, ROWS])
    for i in range(n_layer):
        p = f"blk.{i}."
        m.t(p + "attn_norm.weight", [256], T.F32)
        for a in ("attn_q", "attn_k", "attn_v", "attn_output"):
            m.t(p + a + ".weight", [256, ROWS])
        m.t(p + "ffn_norm.weight", [256], T.F32)
        m.t(p + "ffn_gate_inp.weight", [256, n_expert], T.F32)
        m.t(p + "ffn_gate_exps.weight", [256, ROWS, n_expert])
        m.t(p + "ffn_up_exps.weight", [256, ROWS, n_expert])
        m.t(p + "ffn_down_exps.weight", [512, ROWS, n_expert])
        if shared:
            m.t(p + "ffn_gate_shexp.weight", [256, ROWS])
            m.t(p + "ffn_up_shexp.weight", [256, ROWS])
            m.t(p + "ffn_down_shexp.weight", [512, ROWS])
    for n, ne in extra:
        m.t(n, ne)
    return m


def glm5_next() -> Model:
    """glm5-next: its own never-quantized names and the Q8_0 floor for attn_q_a/attn_q_b/nextn.eh_proj."""
    m = moe("glm5-next", 8, 8, 8, 16)
    m.arch = "glm5-next"
    m.kvs = [(k.replace("llama.", "glm5-next."), typ, v) for k, typ, v in m.kvs]
    for key, typ, v in [
        ("attention.key_length_mla", "u32", 64), ("attention.value_length_mla", "u32", 64),
        ("attention.q_lora_rank", "u32", 64), ("attention.kv_lora_rank", "u32", 64),
        ("ssm.conv_kernel", "u32", 4), ("kda.head_dim", "u32", 32),
        ("expert_feed_forward_length", "u32", 512), ("expert_shared_count", "u32", 1),
        ("attention.indexer.head_count", "u32", 4), ("attention.indexer.key_length", "u32", 64),
        ("attention.indexer.top_k", "u32", 64), ("attention.indexer.kpool", "u32", 4),
        ("hyper_connection.count", "u32", 4), ("hyper_connection.sinkhorn_iterations", "u32", 20),
        ("hyper_connection.epsilon", "f32", 1e-6),
    ]:
        m.kv("{arch}." + key, typ, v)
    for i in (0, 7):
        p = f"blk.{i}."
        for n in ("attn_q_a", "attn_q_b", "attn_kv_a_mqa", "attn_k_b", "attn_v_b", "attn_kv_b",
                  "hc_attn_fn", "indexer.proj", "indexer.attn_k", "ssm_beta", "nextn.eh_proj"):
            m.t(p + n + ".weight", [256, ROWS])
    return m


def bailingmoe3() -> Model:
    """bailingmoe3: under MXFP4_MOE only its expert FFNs become MXFP4, not its 3-D MLA tensors."""
    m = moe("bailingmoe3", 4, 8, 8, 8)
    m.arch = "bailingmoe3"
    m.kvs = [(k.replace("llama.", "bailingmoe3."), typ, v) for k, typ, v in m.kvs]
    for key, typ, v in [
        ("attention.key_length_mla", "u32", 64), ("attention.value_length_mla", "u32", 64),
        ("attention.kv_lora_rank", "u32", 64), ("ssm.conv_kernel", "u32", 4),
        ("kda.head_dim", "u32", 32), ("kda.gate_lower_bound", "f32", -5.0),
        ("expert_feed_forward_length", "u32", 512), ("expert_shared_count", "u32", 1),
        ("leading_dense_block_count", "u32", 1), ("expert_gating_func", "u32", 2),
    ]:
        m.kv("{arch}." + key, typ, v)
    for i in range(4):
        m.t(f"blk.{i}.attn_k_b.weight", [256, ROWS, 8]).t(f"blk.{i}.attn_v_b.weight", [256, ROWS, 8])
    return m


def falcon() -> Model:
    m = Model("falcon", "falcon")
    m.kv("{arch}.context_length", "u32", 256).kv("{arch}.embedding_length", "u32", 256)
    m.kv("{arch}.block_count", "u32", 16).kv("{arch}.feed_forward_length", "u32", 512)
    m.kv("{arch}.attention.head_count", "u32", 8).kv("{arch}.attention.head_count_kv", "u32", 1)
    m.kv("{arch}.attention.layer_norm_epsilon", "f32", 1e-5)
    m.t("token_embd.weight", [256, ROWS]).t("output_norm.weight", [256], T.F32)
    m.t("output_norm.bias", [256], T.F32).t("output.weight", [256, ROWS])
    for i in range(16):
        p = f"blk.{i}."
        m.t(p + "attn_norm.weight", [256], T.F32).t(p + "attn_norm.bias", [256], T.F32)
        m.t(p + "attn_qkv.weight", [256, ROWS]).t(p + "attn_output.weight", [256, ROWS])
        m.t(p + "ffn_up.weight", [256, ROWS]).t(p + "ffn_down.weight", [512, ROWS])
    return m


def odd_widths() -> Model:
    # n_embd 320 (a multiple of 32 and 64, not of 256), n_ff 200 (not even a multiple of 32)
    return llama_like("odd-widths", "llama", 8, 5, 5, n_embd=320, n_ff=200)


def odd_names() -> Model:
    m = llama_like("odd-names", "llama", 12, 8, 2)
    # vary the current types of a few ordinary tensors
    m.tensors = [(n, T.F32 if n == "blk.2.attn_q.weight" else T.Q8_0 if n == "blk.3.attn_q.weight" else typ, ne)
                 for n, typ, ne in m.tensors]
    for name, ne in [
        ("hello", [256, ROWS]),  # 5-byte name: passes llama.cpp's "ends in weight" test
        ("hell", [256, ROWS]),
        ("blk.0.attn_q.bias", [256, ROWS]),
        ("blk.0.attn_q_norm.weight", [256, ROWS]),
        ("blk.0.ffn_gate_inp.weight", [256, ROWS]),
        ("per_layer_token_embd.weight", [256, ROWS]),
        ("position_embd.weight", [256, ROWS]),
        ("token_types.weight", [256, ROWS]),
        ("blk.0.ssm_conv1d.weight", [256, ROWS]),
        ("blk.0.altup_proj.weight", [256, ROWS]),
        ("blk.0.attn_rel_b.weight", [256, ROWS]),
        ("v.patch_embd.weight", [256, ROWS]),
        ("blk.0.time_mix_w1.weight", [256, ROWS]),
        ("a.rvq.codebook.weight", [256, ROWS]),
        ("blk.3.indexer.k_proj.weight", [256, ROWS]),
        ("blk.1.attn_kv_b.weight", [256, ROWS]),
        ("blk.2.attn_qkv.weight", [256, ROWS]),
        ("blk.007.attn_k.weight", [256, ROWS]),
        ("blk.-1.attn_q.weight", [256, ROWS]),
        ("blk.4294967301.attn_v.weight", [256, ROWS]),
        ("blk.x.ffn_down.weight", [512, ROWS]),
        ("blk.0.conv4d.weight", [32, 2, 2, 2]),
        ("blk.0.ffn_down_3d.weight", [512, ROWS, 2]),
        ("blk.5.small.weight", [96, ROWS]),
    ]:
        m.t(name, ne)
    m.t("blk.1.attn_output.weight_f32", [256, ROWS], T.F32)
    return m


def clip() -> Model:
    m = Model("clip", "clip")
    m.t("v.patch_embd.weight", [256, ROWS]).t("v.position_embd.weight", [256, ROWS])
    m.t("mm.0.weight", [256, ROWS]).t("mm.2.weight", [256, ROWS])
    for i in range(4):
        p = f"v.blk.{i}."
        for a in ("attn_q", "attn_k", "attn_v", "attn_out", "ffn_up", "ffn_down"):
            m.t(p + a + ".weight", [256, ROWS])
        m.t(p + "ln1.weight", [256], T.F32)
    return m


def requant() -> Model:
    m = llama_like("requant", "llama", 4, 8, 2)
    m.tensors = [(n, T.Q8_0 if len(ne) > 1 else typ, ne) for n, typ, ne in m.tensors]
    return m


# ---------------------------------------------------------------------------------------------
# running llama-quantize

LINE = re.compile(
    r"^\[\s*(\d+)/\s*(\d+)\] (.+?)\s+- \[([^\]]*)\], type =\s*(\S+), size =.*?(?:\((\S+)\))?$")
FAIL = re.compile(r"failed to quantize: (.*)$")


def ggml_name(typ: int) -> str:
    """ggml's name of a type id (`q4_K`, `f16`, `iq3_xxs`, ...)."""
    return T(typ).name.lower().replace("_k", "_K")


def rle(types: list[str]) -> str:
    out = []
    for t in types:
        if out and out[-1][0] == t:
            out[-1][1] += 1
        else:
            out.append([t, 1])
    return " ".join(t if n == 1 else f"{t}*{n}" for t, n in out)


def write_imatrix(path: Path, entries: dict[str, int]) -> None:
    """A legacy (.dat) imatrix: every value 1, ncall 1."""
    with open(path, "wb") as f:
        f.write(struct.pack("<i", len(entries)))
        for name, n in entries.items():
            b = name.encode()
            f.write(struct.pack("<i", len(b)) + b + struct.pack("<ii", 1, n))
            f.write(np.ones(n, dtype=np.float32).tobytes())
        f.write(struct.pack("<i", 1) + struct.pack("<i", 4) + b"test")


class Runner:
    def __init__(self, quantize: str, work: Path):
        self.quantize = quantize
        self.work = work
        self.n = 0

    def run(self, model_path: Path, args: list[str], *, imatrix: dict[str, int] | None = None,
            tt_file: str | None = None) -> dict:
        self.n += 1
        argv = []
        for a in args:
            if a == "MODEL":
                argv.append(str(model_path))
            elif a == "IMATRIX":
                p = self.work / f"imatrix-{self.n}.dat"
                write_imatrix(p, imatrix)
                argv.append(str(p))
            elif a == "TTFILE":
                p = self.work / f"tt-{self.n}.txt"
                p.write_text(tt_file)
                argv.append(str(p))
            elif a == "OUT":
                argv.append(str(self.work / "out.gguf"))
            else:
                argv.append(a)
        proc = subprocess.run([self.quantize] + argv, capture_output=True, text=True, errors="replace")
        log = proc.stdout + proc.stderr
        rec: dict = {"args": args}
        if tt_file is not None:
            rec["tensor_type_file"] = tt_file
        if imatrix is not None:
            rec["imatrix"] = imatrix
        rows = {}
        for line in log.splitlines():
            m = LINE.match(line)
            if m:
                rows[int(m.group(1))] = (m.group(3), m.group(6) or m.group(5))
        if proc.returncode != 0:
            fail = [FAIL.search(l) for l in log.splitlines()]
            fail = [f.group(1) for f in fail if f]
            offending = re.search(r"offending tensor: (\S+)", log)
            if fail:
                rec["error"] = fail[0]
            else:
                rec["error"] = f"exit status {proc.returncode} (abort)"
                why = [l for l in log.splitlines() if "GGML_ASSERT" in l or "GGML_ABORT" in l or "fatal error" in l]
                rec["abort"] = why[0].split(": ", 1)[-1] if why else None
            rec["error_tensor"] = offending.group(1) if offending else None
            return rec
        if "--dry-run" in args:
            names, types = [rows[i][0] for i in sorted(rows)], [rows[i][1] for i in sorted(rows)]
        else:
            # a real run: read the types back from the file it wrote (its tensor order is the
            # processing order)
            reader = gguf.GGUFReader(str(self.work / "out.gguf"))
            names = [t.name for t in reader.tensors]
            types = [ggml_name(t.tensor_type) for t in reader.tensors]
            (self.work / "out.gguf").unlink()
        rec["order"] = names
        rec["types"] = rle(types)
        nf = re.search(r"WARNING: (\d+) of \d+ tensor\(s\) required fallback quantization", log)
        rec["n_fallback"] = int(nf.group(1)) if nf else 0
        rec["will_require_imatrix"] = "actually completing this quantization will require an imatrix" in log
        return rec


def dry(ftype: str, *flags: str) -> list[str]:
    return ["--dry-run", *flags, "MODEL", ftype]


def cases(model: Model) -> list[tuple[list[str], dict]]:
    """(args, extra) pairs for one model."""
    name = model.name
    out: list[tuple[list[str], dict]] = []
    if name == "llama-70b":
        ftypes = BIG_FTYPES
    elif name in ("llama-65b", "qwen2-80"):
        ftypes = ["Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M", "IQ3_XS"]
    else:
        ftypes = ALL_FTYPES
    for f in ftypes:
        out.append((dry(f), {}))
    im = {"blk.0.attn_q.weight": 256}
    if name in ("llama-gqa4", "llama-mha"):
        for f in ALL_FTYPES:
            out.append((dry(f, "--imatrix", "IMATRIX"), {"imatrix": im}))
    elif name in ("llama-tied-gqa2", "moe8", "odd-widths", "falcon", "llama-70b"):
        for f in IMATRIX_FTYPES:
            out.append((dry(f, "--imatrix", "IMATRIX"), {"imatrix": im}))
    if name == "llama-gqa4":
        out += [
            (dry("Q4_K_M", "--pure"), {}),
            (dry("Q3_K_M", "--pure"), {}),
            (dry("IQ2_XXS", "--pure"), {}),
            (dry("Q4_K_M", "--leave-output-tensor"), {}),
            (dry("Q4_K_M", "--output-tensor-type", "q8_0"), {}),
            (dry("Q4_K_M", "--token-embedding-type", "q3_k"), {}),
            (dry("Q5_K_S", "--token-embedding-type", "Q8_0", "--output-tensor-type", "q4_0"), {}),
            (dry("Q4_K_M", "--tensor-type", "attn_v=q8_0"), {}),
            (dry("Q4_K_M", "--tensor-type", "ffn_down=q4_k"), {}),
            (dry("Q3_K_M", "--tensor-type", "ATTN_(Q|K)=Q5_1", "--tensor-type", "ffn_down=iq4_nl",
                 "--tensor-type", r"blk\.1[0-9]\.=q6_k"), {}),
            (dry("Q4_K_S", "--tensor-type-file", "TTFILE"), {"tt_file": "attn_output=q8_0\n  ffn_up=Q5_0\n"}),
            (dry("F16", "--tensor-type", "attn_v=q8_0", "--output-tensor-type", "q8_0"), {}),
            (dry("Q4_0", "--pure", "--tensor-type", "attn_q=q8_0"), {}),
            (dry("Q4_K_M", "--tensor-type", r"^blk\.(1|3)\.attn_v\.weight$=q2_k"), {}),
            (dry("q4_k_m"), {}),
            (dry("15"), {}),
            (dry("Q4_K_M", "--tensor-type", "attn_(v=q8_0"), {}),
            # errors raised before any conversion
            (["--tensor-type", "ffn=q8_0", "MODEL", "OUT", "IQ2_XXS"], {}),
            (["MODEL", "OUT", "Q2_K_S"], {}),
            # errors raised while converting
            (["--imatrix", "IMATRIX", "MODEL", "OUT", "Q4_K_M"],
             {"imatrix": {"blk.0.attn_q.weight": 256, "blk.3.ffn_up.weight": 100}}),
            (["--imatrix", "IMATRIX", "MODEL", "OUT", "IQ2_XXS"], {"imatrix": {"blk.0.attn_q.weight": 256}}),
            (["--imatrix", "IMATRIX", "MODEL", "OUT", "Q4_0"],
             {"imatrix": {"token_embd.weight": 100, "blk.0.attn_q.weight": 256}}),
        ]
    if name == "llama-tied-gqa2":
        out += [
            (dry("Q4_K_M", "--output-tensor-type", "q5_k"), {}),
            (dry("Q4_K_M", "--token-embedding-type", "q8_0"), {}),
            (dry("Q4_K_M", "--pure", "--output-tensor-type", "q5_k"), {}),
            (dry("Q4_K_M", "--tensor-type", "token_embd=q8_0", "--output-tensor-type", "q5_k"), {}),
            (dry("F16", "--output-tensor-type", "q5_k"), {}),
        ]
    if name == "odd-widths":
        out += [
            (dry("Q8_0", "--tensor-type", "ffn_down=q4_k"), {}),
            (dry("Q4_K_M", "--output-tensor-type", "q4_k"), {}),
            (dry("Q4_K_M", "--tensor-type", "attn=iq2_xs"), {}),
        ]
    if name == "odd-names":
        out += [
            (dry("Q4_K_M", "--token-embedding-type", "q8_0"), {}),
            (dry("Q4_K_M", "--token-embedding-type", "q8_0", "--tensor-type", "per_layer=q5_0"), {}),
            (dry("Q4_K_M", "--tensor-type", "per_layer=q5_0"), {}),
            (dry("Q4_K_M", "--leave-output-tensor", "--tensor-type", "HELLO=q8_0"), {}),
        ]
    if name == "moe8":
        out += [
            (dry("Q4_K_M", "--tensor-type", "ffn_.*_exps=q2_k"), {}),
            (dry("MXFP4_MOE", "--pure"), {}),
        ]
    if name == "odd-types":
        out = [
            (dry("Q4_K_M"), {}),
            (dry("Q4_K_M", "--tensor-type", "attn_q=q8_K"), {}),
            (["--allow-requantize", "MODEL", "OUT", "Q4_K_M"], {}),
            (["MODEL", "OUT", "Q4_K_M"], {}),
            (["--allow-requantize", "--tensor-type", "ids=i32", "MODEL", "OUT", "Q4_K_M"], {}),
            (["--allow-requantize", "--tensor-type", "attn_q=q8_K", "MODEL", "OUT", "Q4_K_M"], {}),
        ]
    if name == "odd-widths":
        out.append((["--output-tensor-type", "q4_k", "MODEL", "OUT", "Q4_K_M"], {}))
    if name == "requant":
        out += [
            (["MODEL", "OUT", "Q4_K_M"], {}),
            (["MODEL", "OUT", "Q8_0"], {}),
            (["--allow-requantize", "MODEL", "OUT", "Q4_K_M"], {}),
        ]
    return out


def odd_types() -> Model:
    """Source types llama-quantize cannot convert from: I32 (no conversion) and Q8_K (no dequantization)."""
    m = llama_like("odd-types", "llama", 2, 8, 2)
    m.t("blk.0.ids.weight", [256, ROWS], T.I32)
    m.t("blk.1.q8k.weight", [256, ROWS], T.Q8_K)
    return m


def models() -> list[Model]:
    return [
        llama_like("llama-gqa4", "llama", 16, 8, 2, rope_freqs=True),
        llama_like("llama-mha", "llama", 12, 4, 4),
        llama_like("llama-tied-gqa2", "llama", 8, 8, 4, tied=True),
        moe("moe8", 8, 8, 2, 8),
        moe("moe16-shexp", 6, 4, 4, 16, shared=True, extra=[("blk.0.attn_k_b.weight", [256, ROWS, 8])]),
        glm5_next(),
        bailingmoe3(),
        moe("moe8-nolayer", 4, 8, 2, 8, extra=[("ffn_down_exps.weight", [512, ROWS, 8])]),
        moe("moe8-badlayer", 4, 8, 2, 8, extra=[("blk.9.ffn_up_exps.weight", [256, ROWS, 8])]),
        llama_like("llama-70b", "llama", 80, 8, 1),
        llama_like("llama-65b", "llama", 80, 4, 4),
        llama_like("qwen2-80", "qwen2", 80, 4, 4, tied=True, attn_bias=True),
        falcon(),
        odd_widths(),
        odd_names(),
        clip(),
        requant(),
        odd_types(),
    ]


def main() -> int:
    repo = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quantize", default=None)
    ap.add_argument("--out", default=str(repo / "fixtures" / "recipe"))
    ap.add_argument("--keep", default=None)
    args = ap.parse_args()
    quantize = args.quantize
    if quantize is None:
        found = sorted(glob.glob(os.path.expanduser("~/.cache/qforge/llama.cpp-0c1e57098-*/bin/llama-quantize")))
        if not found:
            sys.exit("llama-quantize not found: run scripts/build-oracle.sh or pass --quantize")
        quantize = found[0]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    usage = subprocess.run([quantize], capture_output=True, text=True).stdout
    table = usage.split(" allowed quantization types\n")[1].split("\n", 2)[2].lstrip("\n")
    (out_dir / "quantize-help.txt").write_text(table)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        runner = Runner(quantize, work)
        for model in models():
            path = work / f"{model.name}.gguf"
            model.write(path)
            runs = []
            order = None
            for argv, extra in cases(model):
                rec = runner.run(path, argv, imatrix=extra.get("imatrix"), tt_file=extra.get("tt_file"))
                if "order" in rec:
                    o = rec.pop("order")
                    if order is None:
                        order = o
                    elif o != order:
                        sys.exit(f"{model.name}: processing order differs between runs: {argv} {len(o)} vs {len(order)} {[x for x in zip(o, order) if x[0] != x[1]][:3]}")
                runs.append(rec)
            index = {n: i for i, (n, _, _) in enumerate(model.tensors)}
            doc = {
                "model": model.name,
                "metadata": model.metadata_json(),
                "tensors": model.tensors_json(),
                # processing order, as indices into "tensors"
                "order": [index[n] for n in order] if order else None,
                "runs": runs,
            }
            text = json.dumps(doc, indent=None, separators=(",", ":"))
            # one run per line keeps diffs readable
            text = text.replace(',{"args"', ',\n{"args"').replace('"runs":[{', '"runs":[\n{')
            (out_dir / f"{model.name}.json").write_text(text + "\n")
            n_err = sum(1 for r in runs if "error" in r)
            print(f"{model.name}: {len(runs)} runs ({n_err} errors)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
