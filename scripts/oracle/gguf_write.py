#!/usr/bin/env python3
"""Writes a GGUF file with gguf-py's GGUFWriter from a JSON spec, for comparison with qforge's
writer and reader.

    python scripts/oracle/gguf_write.py SPEC.json OUT.gguf

The spec uses the value encoding of gguf_dump.py, so a dump's "kvs" can be fed back:

    {"kvs": [{"key": "general.architecture", "type": "str", "value": "llama"},
             {"key": "general.alignment", "type": "u32", "value": 64},
             {"key": "x", "type": "arr", "elem_type": "f32", "value": [...], "bits": [...]}],
     "tensors": [{"name": "w", "type": 1, "dims": [256, 4], "data_hex": "00ff..."}
                 or {..., "data_file": "path/to/raw/bytes"}]}

- KVs are written in the given order and nothing else is added (GGUFWriter's automatic
  general.architecture is removed first). A "general.alignment" u32 KV also sets the data
  alignment (GGUFWriter.add_custom_alignment), as in the converter.
- Floats are taken from "bits" when present (exact, NaN and infinities included), else "value".
- Strings are latin-1 text standing for raw bytes (any byte string, not only UTF-8).
- Tensor "dims" are in ggml order (ne0 first); the tensor is handed to GGUFWriter as raw bytes
  with raw_dtype = type, shaped (dims reversed) with the row measured in bytes, so gguf-py writes
  n_dims = len(dims) and the dims as given.
gguf-py refuses empty arrays ("Invalid GGUF metadata array. Empty array"): such a spec fails.
"""

from __future__ import annotations

import json
import struct
import sys

import numpy as np

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, GGUFWriter

TYPES = {
    "u8": GGUFValueType.UINT8,
    "i8": GGUFValueType.INT8,
    "u16": GGUFValueType.UINT16,
    "i16": GGUFValueType.INT16,
    "u32": GGUFValueType.UINT32,
    "i32": GGUFValueType.INT32,
    "f32": GGUFValueType.FLOAT32,
    "bool": GGUFValueType.BOOL,
    "str": GGUFValueType.STRING,
    "arr": GGUFValueType.ARRAY,
    "u64": GGUFValueType.UINT64,
    "i64": GGUFValueType.INT64,
    "f64": GGUFValueType.FLOAT64,
}


def from_bits(bits: int, ty: GGUFValueType) -> float:
    if ty == GGUFValueType.FLOAT32:
        return struct.unpack("<f", struct.pack("<I", bits))[0]
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def element(value, bits, ty: GGUFValueType):
    """One scalar in the form GGUFWriter._pack_val expects."""
    if ty in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64):
        return from_bits(bits, ty) if bits is not None else float(value)
    if ty == GGUFValueType.STRING:
        return value.encode("latin-1")
    if ty == GGUFValueType.BOOL:
        return bool(value)
    return int(value)


def add_kv(w: GGUFWriter, kv: dict) -> None:
    ty = TYPES[kv["type"]]
    if ty == GGUFValueType.ARRAY:
        elem = TYPES[kv["elem_type"]]
        bits = kv.get("bits") or [None] * len(kv["value"])
        items = [element(v, b, elem) for v, b in zip(kv["value"], bits)]
        w.add_key_value(kv["key"], items, ty, sub_type=elem)
    elif kv["key"] == "general.alignment" and ty == GGUFValueType.UINT32:
        w.add_custom_alignment(int(kv["value"]))
    else:
        w.add_key_value(kv["key"], element(kv.get("value"), kv.get("bits"), ty), ty)


def add_tensor(w: GGUFWriter, t: dict) -> None:
    if "data_file" in t:
        with open(t["data_file"], "rb") as f:
            raw = f.read()
    else:
        raw = bytes.fromhex(t["data_hex"])
    qtype = GGMLQuantizationType(int(t["type"]))
    block, type_size = GGML_QUANT_SIZES[qtype]
    dims = [int(d) for d in t["dims"]]
    row_bytes = dims[0] // block * type_size
    shape = tuple(reversed(dims[1:])) + (row_bytes,)
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(shape)
    w.add_tensor(t["name"], arr, raw_dtype=qtype)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    w = GGUFWriter(argv[2], "unused")
    w.remove_key("general.architecture")
    for kv in spec.get("kvs", []):
        add_kv(w, kv)
    for t in spec.get("tensors", []):
        add_tensor(w, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
