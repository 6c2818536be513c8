#!/usr/bin/env python3
"""Regenerate calibration/src/tokenizer/unicode_table.rs from the pinned llama.cpp's
src/unicode-data.cpp (category ranges, simple lowercase map, first-code-point NFD ranges).

Usage: python3 scripts/gen-unicode-tables.py [LLAMA_CPP_DIR] > calibration/src/tokenizer/unicode_table.rs
Default LLAMA_CPP_DIR: ~/.cache/qforge/llama_cpp_python-0.3.36/vendor/llama.cpp (scripts/build-oracle.sh).
"""
import os
import re
import sys

src_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser(
    "~/.cache/qforge/llama_cpp_python-0.3.36/vendor/llama.cpp")
text = open(os.path.join(src_dir, "src", "unicode-data.cpp"), encoding="utf-8").read()


def block(name):
    m = re.search(re.escape(name) + r" = \{[^\n]*\n(.*?)\n\};", text, re.S)
    if not m:
        sys.exit(f"{name} not found in unicode-data.cpp")
    rows = []
    for line in m.group(1).splitlines():
        nums = re.findall(r"0x[0-9A-Fa-f]+", line)
        if nums:
            rows.append([int(n, 16) for n in nums])
    return rows


flags = block("unicode_ranges_flags")
lower = block("unicode_map_lowercase")
nfd = block("unicode_ranges_nfd")
for start, f in flags:
    if f > 0xFF:
        sys.exit(f"flag 0x{f:x} at 0x{start:x} does not fit the u8 table")

out = []
out.append("//! Unicode general-category ranges as llama.cpp's `unicode-data.cpp` classifies code points")
out.append("//! (generated from the pinned llama.cpp tree by `scripts/gen-unicode-tables.py`; Unicode data, not code).")
out.append("//! Each entry is `(first code point, category flags)`; a range runs to the next entry's start.")
out.append("//! Flags: 0x01 undefined, 0x02 number, 0x04 letter, 0x08 separator, 0x10 mark, 0x20 punctuation,")
out.append("//! 0x40 symbol, 0x80 control.")
out.append("")
out.append("pub(super) static CATEGORY_RANGES: &[(u32, u8)] = &[")
out += [f"    (0x{a:X}, 0x{b:02X})," for a, b in flags]
out.append("];")
out.append("")
out.append("/// Simple lowercase mappings `(code point, lowercase)`, sorted (`unicode_map_lowercase`).")
out.append("pub(super) static LOWERCASE: &[(u32, u32)] = &[")
out += [f"    (0x{a:X}, 0x{b:X})," for a, b in lower]
out.append("];")
out.append("")
out.append("/// `(first, last, base)`: code points in `first..=last` decompose to `base` first")
out.append("/// (`unicode_ranges_nfd`; llama.cpp keeps only that first code point).")
out.append("pub(super) static NFD_RANGES: &[(u32, u32, u32)] = &[")
out += [f"    (0x{a:X}, 0x{b:X}, 0x{c:X})," for a, b, c in nfd]
out.append("];")
print("\n".join(out))
