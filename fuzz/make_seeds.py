#!/usr/bin/env python3
"""Writes the safetensors seed inputs in fuzz/seeds/safetensors/ (standard library only):
small files laid out as the safetensors format specifies (8-byte little-endian header length,
JSON header padded with spaces to a multiple of 8, data). The GGUF target's seeds are the
committed fixtures in fixtures/malformed/ (see README.md)."""

import json
import struct
from pathlib import Path

OUT = Path(__file__).resolve().parent / "seeds" / "safetensors"


def file(tensors: dict, data: bytes, metadata: dict | None = None) -> bytes:
    header = dict(tensors)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


SEEDS = {
    "empty": file({}, b""),
    "one_f32": file(
        {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}},
        struct.pack("<4f", 1, -2, 0.5, 0),
        {"format": "pt"},
    ),
    "mixed": file(
        {
            "a.bf16": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]},
            "b.i64": {"dtype": "I64", "shape": [1], "data_offsets": [6, 14]},
            "c.scalar": {"dtype": "U8", "shape": [], "data_offsets": [14, 15]},
            "d.empty": {"dtype": "F16", "shape": [0, 4], "data_offsets": [15, 15]},
            "e.f8": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [15, 17]},
        },
        bytes(range(17)),
    ),
}

if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS.items():
        (OUT / f"{name}.safetensors").write_bytes(data)
    print(f"wrote {len(SEEDS)} seeds to {OUT}")
