#!/usr/bin/env python3
"""Structured difference of two GGUF files (read with gguf-py's GGUFReader), for the parity tests.

    python scripts/oracle/gguf_diff.py EXPECTED.gguf ACTUAL.gguf [--max N]

Prints one line per difference, in this order: header (version, alignment), metadata (keys missing
or extra, key order, value types, values: scalars in full, arrays by length and first differing
index), tensors (missing or extra, order, ggml type, shape, data: first differing byte, and for
float tensors the largest absolute difference of the values). Exit status 0 when nothing differs
(the files may still differ in padding bytes), 1 when something does, 2 when a file cannot be read.
At most --max lines per section (default 20), then a count of the rest.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from gguf import GGUFReader, GGUFValueType
from gguf.constants import GGMLQuantizationType

HEADER_FIELDS = ("GGUF.version", "GGUF.tensor_count", "GGUF.kv_count")


def field_value(f):
    """(type name, python value) of a metadata field; arrays as (elem type, list)."""
    t = f.types[0]
    if t == GGUFValueType.ARRAY:
        et = f.types[1] if len(f.types) > 1 else None
        if et == GGUFValueType.STRING:
            vals = [bytes(f.parts[i]) for i in f.data]
        else:
            vals = [f.parts[i].tolist()[0] if len(f.parts[i]) == 1 else f.parts[i].tolist() for i in f.data]
        return f"arr[{et.name.lower() if et is not None else '?'}]", vals
    if t == GGUFValueType.STRING:
        return "str", bytes(f.parts[f.data[0]])
    return t.name.lower(), f.parts[f.data[0]].tolist()[0]


def short(v, n=80) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


class Report:
    def __init__(self, limit: int):
        self.limit = limit
        self.lines: list[str] = []
        self.section_counts: dict[str, int] = {}

    def add(self, section: str, msg: str) -> None:
        c = self.section_counts.get(section, 0) + 1
        self.section_counts[section] = c
        if c <= self.limit:
            self.lines.append(f"{section}: {msg}")

    def finish(self) -> list[str]:
        out = list(self.lines)
        for s, c in self.section_counts.items():
            if c > self.limit:
                out.append(f"{s}: ... and {c - self.limit} more")
        return out


def compare_kv(a: GGUFReader, b: GGUFReader, r: Report) -> None:
    ka = [k for k in a.fields if k not in HEADER_FIELDS]
    kb = [k for k in b.fields if k not in HEADER_FIELDS]
    for k in ka:
        if k not in b.fields:
            r.add("metadata", f"missing key {k} = {short(field_value(a.fields[k])[1])}")
    for k in kb:
        if k not in a.fields:
            r.add("metadata", f"extra key {k} = {short(field_value(b.fields[k])[1])}")
    common_a = [k for k in ka if k in b.fields]
    common_b = [k for k in kb if k in a.fields]
    if common_a != common_b:
        i = next(i for i, (x, y) in enumerate(zip(common_a, common_b)) if x != y)
        r.add("metadata", f"key order differs at common key #{i}: expected {common_a[i]}, got {common_b[i]}")
    for k in common_a:
        ta, va = field_value(a.fields[k])
        tb, vb = field_value(b.fields[k])
        if ta != tb:
            r.add("metadata", f"{k}: type {ta} expected, got {tb}")
        if va == vb:
            continue
        if isinstance(va, list) and isinstance(vb, list):
            if len(va) != len(vb):
                r.add("metadata", f"{k}: {len(va)} elements expected, got {len(vb)}")
            diffs = [i for i, (x, y) in enumerate(zip(va, vb)) if x != y]
            if diffs:
                i = diffs[0]
                r.add("metadata", f"{k}: {len(diffs)} elements differ, first [{i}]: expected {short(va[i])}, got {short(vb[i])}")
        else:
            r.add("metadata", f"{k}: expected {short(va)}, got {short(vb)}")


def tensor_values(t) -> np.ndarray | None:
    """Float values of a tensor when gguf-py can decode its type, else None."""
    try:
        from gguf.quants import dequantize

        return dequantize(t.data, GGMLQuantizationType(int(t.tensor_type))).astype(np.float64).reshape(-1)
    except Exception:  # noqa: BLE001 - any type gguf-py cannot decode is compared as bytes only
        return None


def compare_tensors(a: GGUFReader, b: GGUFReader, r: Report) -> None:
    ta = {t.name: t for t in a.tensors}
    tb = {t.name: t for t in b.tensors}
    for n in ta:
        if n not in tb:
            r.add("tensors", f"missing tensor {n}")
    for n in tb:
        if n not in ta:
            r.add("tensors", f"extra tensor {n}")
    oa = [n for n in ta if n in tb]
    ob = [n for n in tb if n in ta]
    if oa != ob:
        i = next(i for i, (x, y) in enumerate(zip(oa, ob)) if x != y)
        r.add("tensors", f"order differs at common tensor #{i}: expected {oa[i]}, got {ob[i]}")
    for n in oa:
        x, y = ta[n], tb[n]
        tx, ty = GGMLQuantizationType(int(x.tensor_type)).name, GGMLQuantizationType(int(y.tensor_type)).name
        sx, sy = [int(v) for v in x.shape], [int(v) for v in y.shape]
        if tx != ty:
            r.add("tensors", f"{n}: type {tx} expected, got {ty}")
        if sx != sy:
            r.add("tensors", f"{n}: shape {sx} expected, got {sy}")
        if tx != ty or sx != sy:
            continue
        bx = np.asarray(x.data).reshape(-1).view(np.uint8)
        by = np.asarray(y.data).reshape(-1).view(np.uint8)
        if bx.shape == by.shape and np.array_equal(bx, by):
            continue
        first = int(np.argmax(bx[: min(len(bx), len(by))] != by[: min(len(bx), len(by))])) if len(bx) and len(by) else 0
        msg = f"{n} ({tx} {sx}): data differ, first at byte {first} of {len(bx)}"
        vx, vy = tensor_values(x), tensor_values(y)
        if vx is not None and vy is not None and vx.shape == vy.shape:
            d = np.abs(vx - vy)
            d[np.isnan(d)] = np.inf
            msg += f"; {int((d > 0).sum())} of {d.size} values differ, max |diff| {float(d.max()):.6g}"
        r.add("tensors", msg)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("expected")
    ap.add_argument("actual")
    ap.add_argument("--max", type=int, default=20)
    args = ap.parse_args()
    try:
        a = GGUFReader(args.expected)
        b = GGUFReader(args.actual)
    except Exception as e:  # noqa: BLE001
        print(f"cannot read: {e}")
        return 2
    r = Report(args.max)
    va = int(a.fields["GGUF.version"].parts[-1][0])
    vb = int(b.fields["GGUF.version"].parts[-1][0])
    if va != vb:
        r.add("header", f"version {va} expected, got {vb}")
    if a.alignment != b.alignment:
        r.add("header", f"alignment {a.alignment} expected, got {b.alignment}")
    compare_kv(a, b, r)
    compare_tensors(a, b, r)
    lines = r.finish()
    for line in lines:
        print(line)
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
