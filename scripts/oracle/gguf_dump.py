#!/usr/bin/env python3
"""Dumps a GGUF file as JSON using gguf-py's GGUFReader, for comparison with qforge's reader.

    python scripts/oracle/gguf_dump.py FILE.gguf [OUT.json]

Output (one JSON object, written to OUT.json or stdout):

    {"version": 3, "byte_order": "I", "alignment": 32, "data_offset": 1234,
     "tensor_count": 2, "kv_count": 5,
     "kvs": [{"key": "...", "type": "u32", "value": 7}, ...],           # file order
     "tensors": [{"name": "...", "type": 1, "dims": [256, 512],         # ggml order, ne0 first
                  "offset": 0, "n_bytes": 262144, "sha256": "..."}, ...]}

Values are exact, never rounded or re-encoded:
- integers are JSON integers; bools are JSON booleans;
- f32 and f64 values are given as their IEEE bit patterns ("bits", an unsigned integer) beside
  "value" (the float, or null when it is not finite, since JSON has no NaN or infinity);
- strings are the raw bytes decoded as latin-1 (one character per byte, so any byte string
  survives), with "utf8": true when the bytes are valid UTF-8;
- arrays are {"type": "arr", "elem_type": "f32", "value": [...]} with every element, each encoded
  as above (f32/f64 arrays carry "bits" as a list too). The element type is read from the file,
  so it is right for empty arrays as well.
Type names are those of llama.cpp's gguf_type_name: u8 i8 u16 i16 u32 i32 f32 bool str arr u64
i64 f64. A file gguf-py rejects gives exit status 1 and {"error": "..."} on stdout.
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np

from gguf import GGUFReader, GGUFValueType

TYPE_NAMES = {
    GGUFValueType.UINT8: "u8",
    GGUFValueType.INT8: "i8",
    GGUFValueType.UINT16: "u16",
    GGUFValueType.INT16: "i16",
    GGUFValueType.UINT32: "u32",
    GGUFValueType.INT32: "i32",
    GGUFValueType.FLOAT32: "f32",
    GGUFValueType.BOOL: "bool",
    GGUFValueType.STRING: "str",
    GGUFValueType.ARRAY: "arr",
    GGUFValueType.UINT64: "u64",
    GGUFValueType.INT64: "i64",
    GGUFValueType.FLOAT64: "f64",
}

# Pseudo-fields GGUFReader adds for the file header; they are not metadata.
HEADER_FIELDS = ("GGUF.version", "GGUF.tensor_count", "GGUF.kv_count")


def text(raw: bytes) -> dict:
    """A string value: latin-1 text of the raw bytes, and whether they are UTF-8."""
    try:
        raw.decode("utf-8")
        utf8 = True
    except UnicodeDecodeError:
        utf8 = False
    return {"value": raw.decode("latin-1"), "utf8": utf8}


def floats(arr: np.ndarray, ty: GGUFValueType) -> tuple[list, list[int]]:
    """Values (None where not finite) and bit patterns of a float array."""
    bits_dtype = np.dtype("<u4") if ty == GGUFValueType.FLOAT32 else np.dtype("<u8")
    le = arr.astype(arr.dtype.newbyteorder("<"))
    bits = [int(b) for b in le.view(bits_dtype)]
    values = [float(v) if np.isfinite(v) else None for v in arr.tolist()]
    return values, bits


def scalar(part: np.ndarray, ty: GGUFValueType) -> dict:
    """A non-string scalar held in the one-element numpy array `part`."""
    if ty in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64):
        values, bits = floats(part, ty)
        return {"value": values[0], "bits": bits[0]}
    if ty == GGUFValueType.BOOL:
        return {"value": bool(part[0])}
    return {"value": int(part[0])}


def field_value(field) -> dict:
    """The JSON form of one metadata field, from its raw parts (parts[0..3] are the key length,
    key bytes and value type; the value's parts follow)."""
    ty = GGUFValueType(int(field.parts[2][0]))
    out: dict = {"key": bytes(field.parts[1]).decode("latin-1"), "type": TYPE_NAMES[ty]}
    if ty == GGUFValueType.STRING:
        out.update(text(bytes(field.parts[4])))
    elif ty == GGUFValueType.ARRAY:
        elem = GGUFValueType(int(field.parts[3][0]))
        out["elem_type"] = TYPE_NAMES[elem]
        items = [field.parts[i] for i in field.data]
        if elem == GGUFValueType.STRING:
            decoded = [text(bytes(p)) for p in items]
            out["value"] = [d["value"] for d in decoded]
            out["utf8"] = [d["utf8"] for d in decoded]
        elif elem in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64):
            arr = np.concatenate(items) if items else np.zeros(0, dtype=np.float32)
            out["value"], out["bits"] = floats(arr, elem)
        elif elem == GGUFValueType.BOOL:
            out["value"] = [bool(p[0]) for p in items]
        else:
            out["value"] = [int(p[0]) for p in items]
    else:
        out.update(scalar(field.parts[3], ty))
    return out


def dump(path: str) -> dict:
    r = GGUFReader(path, "r")
    kvs = [field_value(f) for name, f in r.fields.items() if name not in HEADER_FIELDS]
    tensors = []
    for t in r.tensors:
        info = t.field.parts
        start = int(t.data_offset)
        raw = bytes(r.data[start : start + int(t.n_bytes)])
        tensors.append(
            {
                "name": t.name,
                "type": int(t.tensor_type),
                "dims": [int(d) for d in t.shape],
                "offset": int(info[5][0]),
                "n_bytes": int(t.n_bytes),
                "sha256": hashlib.sha256(raw).hexdigest(),
            }
        )
    return {
        "version": int(r.fields["GGUF.version"].parts[0][0]),
        "byte_order": r.byte_order,
        "alignment": int(r.alignment),
        "data_offset": int(r.data_offset),
        "tensor_count": int(r.fields["GGUF.tensor_count"].parts[0][0]),
        "kv_count": int(r.fields["GGUF.kv_count"].parts[0][0]),
        "kvs": kvs,
        "tensors": tensors,
    }


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        result = dump(argv[1])
        status = 0
    except Exception as e:  # noqa: BLE001 - any rejection by gguf-py is reported as data
        result = {"error": f"{type(e).__name__}: {e}"}
        status = 1
    out = json.dumps(result, ensure_ascii=True, allow_nan=False)
    if len(argv) == 3 and status == 0:
        with open(argv[2], "w", encoding="ascii") as f:
            f.write(out)
    else:
        print(out)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
