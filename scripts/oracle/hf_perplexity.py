#!/usr/bin/env python3
"""llama-perplexity's perplexity computed by transformers in float32 on a Hugging Face checkpoint.

    ~/.cache/qforge/venv-convert/bin/python scripts/oracle/hf_perplexity.py MODEL_DIR TEXT \
        [-c 128] [--chunks 4] [--ids IDS.json] [--bos auto|none|ID] [--json]

The algorithm is llama-perplexity's (perplexity() in tools/perplexity/perplexity.cpp at the pinned
commit): the text (one trailing newline dropped) is tokenized with BOS added when the vocabulary
adds it; it is cut into min(--chunks, n_tokens / n_ctx) chunks of n_ctx tokens, each evaluated
from a fresh context with its first token replaced by BOS (when the vocabulary adds BOS); the
tokens of positions n_ctx/2+1 .. n_ctx-1 are scored by the log-softmax of the logits one position
before; PPL = exp(mean negative log-likelihood). Prints the running `[i]ppl,` values and
`Final estimate: PPL = X`, or a JSON object with --json.

--ids takes the token ids (a JSON list) from elsewhere, e.g. `qforge tokenize --ids
--no-parse-special --no-escape` on the converted model, so that only the forward passes are
compared; otherwise the checkpoint's own tokenizer (AutoTokenizer) is used. --bos auto: the
tokenizer's BOS id if encoding a text with special tokens puts it first, else none.

The model runs in float32 with eager attention (Gemma 2's attention soft-capping needs it), so it
differs from llama.cpp by llama.cpp's roundings only: the f16 KV cache, and weights stored in
f16/bf16 being used as such.

--set KEY=JSON overrides a config value, for checkpoints whose config llama.cpp reads otherwise
than transformers: e.g. Gemma 3's `layer_types`, which the converter does not write and
llama.cpp replaces by its fixed pattern (every 6th layer global).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("text")
    ap.add_argument("-c", "--ctx-size", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=None)
    ap.add_argument("--ids", default=None, help="JSON list of token ids (BOS included if added)")
    ap.add_argument("--bos", default="auto")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override a config.json value (e.g. layer_types) before the model is built",
    )
    a = ap.parse_args()

    tok = None
    if a.ids is None or a.bos == "auto":
        tok = AutoTokenizer.from_pretrained(a.model)
    if a.ids is not None:
        with open(a.ids, encoding="utf-8") as f:
            ids = [int(t) for t in json.load(f)]
    else:
        with open(a.text, "rb") as f:
            raw = f.read()
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        ids = tok(raw.decode("utf-8"), add_special_tokens=True)["input_ids"]
    if a.bos == "none":
        bos = None
    elif a.bos == "auto":
        probe = tok("a", add_special_tokens=True)["input_ids"]
        bos = tok.bos_token_id if probe and probe[0] == tok.bos_token_id else None
    else:
        bos = int(a.bos)

    n_ctx = a.ctx_size
    if len(ids) < 2 * n_ctx:
        print(f"{len(ids)} tokens: need at least {2 * n_ctx}", file=sys.stderr)
        return 1
    n_chunk = len(ids) // n_ctx
    if a.chunks is not None:
        n_chunk = min(n_chunk, a.chunks)
    first = n_ctx // 2

    torch.set_grad_enabled(False)
    overrides = {}
    for kv in a.set:
        key, _, value = kv.partition("=")
        overrides[key] = json.loads(value)
    model = AutoModelForCausalLM.from_pretrained(
        a.model, torch_dtype=torch.float32, attn_implementation="eager", **overrides
    )
    model.eval()

    nll = 0.0
    count = 0
    running = []
    for i in range(n_chunk):
        chunk = ids[i * n_ctx : (i + 1) * n_ctx]
        inp = list(chunk)
        if bos is not None:
            inp[0] = bos
        logits = model(torch.tensor([inp])).logits[0].to(torch.float64)
        logp = torch.log_softmax(logits[first : n_ctx - 1], dim=-1)
        targets = torch.tensor(chunk[first + 1 : n_ctx])
        nll -= float(logp.gather(1, targets[:, None]).sum())
        count += n_ctx - 1 - first
        running.append(math.exp(nll / count))
        if not a.json:
            print(f"[{i + 1}]{running[-1]:.4f},", end="", flush=True)
    ppl = math.exp(nll / count)
    if a.json:
        print(json.dumps({"ppl": ppl, "chunks": running, "n_tokens": len(ids), "bos": bos}))
    else:
        print(f"\nFinal estimate: PPL = {ppl:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
