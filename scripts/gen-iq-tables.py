#!/usr/bin/env python3
"""Generates formats/src/ggml/quants/iq/tables.rs: the lookup tables of ggml's IQ quant types,
parsed out of the pinned llama.cpp's ggml/src/ggml-common.h.

    scripts/gen-iq-tables.py [GGML_COMMON_H] [--commit COMMIT] [--out PATH] [--check]

GGML_COMMON_H defaults to the source unpacked by scripts/build-oracle.sh. With --check the
script writes nothing and exits with status 1 when the committed file differs from what it would
generate.

Every GGML_TABLE_BEGIN/GGML_TABLE_END table of the header must be listed below, either as
generated or as skipped with a reason, so that a table added upstream cannot go unnoticed.
"""

import argparse
import hashlib
import os
import re
import sys
import textwrap

DEFAULT_COMMIT = "0c1e57098"
DEFAULT_HEADER = os.path.expanduser(
    "~/.cache/qforge/llama_cpp_python-0.3.36/vendor/llama.cpp/ggml/src/ggml-common.h"
)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "formats/src/ggml/quants/iq/tables.rs")

# Tables emitted, in output order, with the doc comment of each.
GENERATED = {
    "kmask_iq2xs": "Bit `j` of a sign byte (`kmask_iq2xs`).",
    "ksigns_iq2xs": "The sign byte of a 7-bit sign index: the 7 bits plus an eighth that makes "
    "the number of set bits even (`ksigns_iq2xs`).",
    "iq2xxs_grid": "IQ2_XXS grid: 256 points of 8 unsigned magnitudes, one per byte, least "
    "significant byte first (`iq2xxs_grid`).",
    "iq2xs_grid": "IQ2_XS grid: 512 points of 8 magnitudes, least significant byte first "
    "(`iq2xs_grid`).",
    "iq2s_grid": "IQ2_S grid: 1024 points of 8 magnitudes, least significant byte first "
    "(`iq2s_grid`).",
    "iq3xxs_grid": "IQ3_XXS grid: 256 points of 4 magnitudes, least significant byte first "
    "(`iq3xxs_grid`).",
    "iq3s_grid": "IQ3_S grid: 512 points of 4 magnitudes, least significant byte first "
    "(`iq3s_grid`).",
    "kvalues_iq4nl": "The 16 non-linear IQ4_NL/IQ4_XS levels (`kvalues_iq4nl`).",
    "iq1s_grid": "IQ1_S/IQ1_M grid: 2048 points of 8 signed values in {-1, 0, 1}, one `int8_t` "
    "per byte, least significant byte first (`iq1s_grid`).",
}

# Tables of the header that are deliberately not emitted.
SKIPPED = {
    "ksigns64": "a SIMD expansion of ksigns_iq2xs (0x00/0xff per sign bit); no scalar path reads it",
    "iq1s_grid_gpu": "the GPU packing of iq1s_grid (2 bits per value); only GPU back ends read it",
    "kvalues_fp4": "MXFP4/NVFP4 levels, owned by the fp4 family",
}

# Scalar constants (#define NAME VALUE) emitted with the tables.
DEFINES = {
    "NGRID_IQ1S": ("usize", "Points in the IQ1_S/IQ1_M grid (`NGRID_IQ1S`)."),
    "IQ1S_DELTA": ("f32", "Offset added to IQ1_S grid values, signed per 32 weights (`IQ1S_DELTA`)."),
    "IQ1M_DELTA": ("f32", "Offset added to IQ1_M grid values, signed per 8 weights (`IQ1M_DELTA`)."),
}

C_TYPES = {
    "uint8_t": ("u8", 0, 2**8 - 1),
    "int8_t": ("i8", -(2**7), 2**7 - 1),
    "uint16_t": ("u16", 0, 2**16 - 1),
    "uint32_t": ("u32", 0, 2**32 - 1),
    "uint64_t": ("u64", 0, 2**64 - 1),
}

TABLE_RE = re.compile(
    r"GGML_TABLE_BEGIN\(\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*\)(.*?)GGML_TABLE_END\(\)", re.S
)
DEFINE_RE = re.compile(r"^\s*#define\s+(\w+)\s+(\S+)\s*$", re.M)


def fail(msg):
    sys.exit(f"gen-iq-tables: {msg}")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def parse_int(tok):
    m = re.fullmatch(r"(-?)(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*", tok)
    if not m:
        fail(f"not an integer literal: {tok!r}")
    return int(m.group(1) + m.group(2), 0)


def parse(header_text):
    text = strip_comments(header_text)
    defines = {m.group(1): m.group(2) for m in DEFINE_RE.finditer(text)}
    tables = {}
    for m in TABLE_RE.finditer(text):
        ctype, name, size_tok = m.group(1), m.group(2), m.group(3)
        if ctype == "type":  # the macro's own definitions
            continue
        if ctype not in C_TYPES:
            fail(f"table {name}: unsupported element type {ctype}")
        size = parse_int(defines.get(size_tok, size_tok))
        toks = [t for t in (s.strip() for s in m.group(4).split(",")) if t]
        values = [parse_int(t) for t in toks]
        if len(values) != size:
            fail(f"table {name}: {len(values)} values for declared size {size}")
        _, lo, hi = C_TYPES[ctype]
        if any(v < lo or v > hi for v in values):
            fail(f"table {name}: value out of range for {ctype}")
        if name in tables:
            fail(f"table {name} defined twice")
        tables[name] = (ctype, values)
    return defines, tables


def rust_define(name, rtype, raw):
    if rtype == "usize":
        return str(parse_int(raw))
    m = re.fullmatch(r"([0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?)[fF]", raw)
    if not m:
        fail(f"#define {name}: not a float literal: {raw!r}")
    return m.group(1) + ("0" if m.group(1).endswith(".") else "")


def doc_lines(doc):
    return ["/// " + line for line in textwrap.wrap(doc, 96)]


def render(tables, defines, digest, commit):
    out = [
        "// @generated by scripts/gen-iq-tables.py: never edit by hand; rerun the script instead.",
        f"// Source: ggml/src/ggml-common.h of llama.cpp commit {commit}",
        f"// (sha256 {digest}).",
        "",
        "//! Lookup tables and constants of ggml's IQ quant types, verbatim from the pinned",
        "//! `ggml-common.h`. Multi-byte entries pack their elements least significant byte first,",
        "//! as the C code reads them through a byte pointer on a little-endian machine.",
        "",
    ]
    for name, (rtype, doc) in DEFINES.items():
        if name not in defines:
            fail(f"#define {name} not found")
        value = rust_define(name, rtype, defines[name])
        out += doc_lines(doc)
        out += [f"pub(crate) const {name}: {rtype} = {value};", ""]
    for name, doc in GENERATED.items():
        ctype, values = tables[name]
        rtype = C_TYPES[ctype][0]
        if rtype in ("u64", "u32", "u16"):
            width = {"u64": 16, "u32": 8, "u16": 4}[rtype]
            cells = [f"0x{v:0{width}x}" for v in values]
            per_line = {"u64": 4, "u32": 8, "u16": 8}[rtype]
        else:
            cells = [str(v) for v in values]
            per_line = 16
        out += doc_lines(doc)
        out.append("#[rustfmt::skip]")
        out.append(f"pub(crate) const {name.upper()}: [{rtype}; {len(values)}] = [")
        for i in range(0, len(cells), per_line):
            out.append("    " + ", ".join(cells[i : i + per_line]) + ",")
        out.append("];")
        out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("header", nargs="?", default=DEFAULT_HEADER, help="path to ggml-common.h")
    ap.add_argument("--commit", default=DEFAULT_COMMIT, help="llama.cpp commit the header comes from")
    ap.add_argument("--out", default=DEFAULT_OUT, help="Rust file to write")
    ap.add_argument("--check", action="store_true", help="only compare with the existing file")
    args = ap.parse_args()

    try:
        with open(args.header, "rb") as f:
            raw = f.read()
    except OSError as e:
        fail(f"cannot read {args.header}: {e}")
    defines, tables = parse(raw.decode("utf-8"))

    unknown = sorted(set(tables) - set(GENERATED) - set(SKIPPED))
    if unknown:
        fail(f"unclassified tables in the header (add them to GENERATED or SKIPPED): {unknown}")
    missing = sorted(set(GENERATED) - set(tables))
    if missing:
        fail(f"tables not found in the header: {missing}")

    text = render(tables, defines, hashlib.sha256(raw).hexdigest(), args.commit)
    if args.check:
        try:
            with open(args.out, encoding="utf-8") as f:
                current = f.read()
        except OSError:
            current = None
        if current != text:
            print(f"gen-iq-tables: {args.out} is out of date", file=sys.stderr)
            sys.exit(1)
        return
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {args.out} ({len(GENERATED)} tables)")


if __name__ == "__main__":
    main()
