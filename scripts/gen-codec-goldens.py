#!/usr/bin/env python3
"""Writes fixtures/golden/codecs/: bytes produced by the pinned llama.cpp's own codecs.

For a fixed deterministic input (4 rows of 512 values: gaussian weights, outliers, a zero block,
tiny values, rounding ties, ...) and importance vector, runs the ggml-codec harness
(scripts/oracle/ggml-codec.c, built by scripts/build-oracle.sh) to quantize with
ggml_quantize_chunk, with and without the importance vector, and to dequantize the result with the
type's to_float. formats/tests/codec_goldens.rs checks qforge's codecs against these files, so the
codecs are checked even where the oracle is not built.

Usage: python3 scripts/gen-codec-goldens.py [ORACLE_BIN_DIR]
"""
import math
import os
import struct
import subprocess
import sys

ROWS, COLS = 4, 512
# Types llama-quantize can produce (quantize + dequantize goldens); the IQ1/IQ2/IQ3 types are
# produced with the importance vector only and give dequantization goldens.
QUANT_TYPES = ["f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K", "q4_K", "q5_K",
               "q6_K", "iq4_nl", "iq4_xs", "tq1_0", "tq2_0", "mxfp4", "nvfp4", "q1_0", "q2_0"]
IMATRIX_ONLY = ["iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s", "iq1_s", "iq1_m"]


class Lcg:
    """Numerical Recipes LCG; deterministic across Python versions."""

    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFF

    def uniform(self):
        self.s = (1664525 * self.s + 1013904223) & 0xFFFFFFFF
        return (self.s >> 8) / float(1 << 24)

    def normal(self):
        return sum(self.uniform() for _ in range(4)) - 2.0


def make_input():
    r = Lcg(20261123)
    vals = []
    for row in range(ROWS):
        for j in range(COLS):
            if row == 0:
                x = r.normal() * 0.02
            elif row == 1:
                x = r.normal() * 4.0 if r.uniform() < 0.01 else r.normal() * 0.05
            elif row == 2:
                x = 0.0 if j < 256 else r.normal() * 1e-5
            else:
                x = (math.floor(r.uniform() * 33) - 16) * 0.5 if j % 64 < 32 else 0.25
            vals.append(struct.unpack("<f", struct.pack("<f", x))[0])
    im = [math.exp(r.normal() * 2.0) * 1e-2 for _ in range(COLS)]
    return vals, im


def main():
    bin_dir = sys.argv[1] if len(sys.argv) > 1 else subprocess.run(
        ["bash", os.path.join(os.path.dirname(__file__), "build-oracle.sh")],
        check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    codec = os.path.join(bin_dir, "ggml-codec")
    out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "golden", "codecs")
    os.makedirs(out, exist_ok=True)
    vals, im = make_input()
    inp, imf = os.path.join(out, "input.f32"), os.path.join(out, "imatrix.f32")
    with open(inp, "wb") as f:
        f.write(struct.pack("<%df" % len(vals), *vals))
    with open(imf, "wb") as f:
        f.write(struct.pack("<%df" % len(im), *im))
    jobs = [(t, False) for t in QUANT_TYPES] + [(t, True) for t in QUANT_TYPES + IMATRIX_ONLY]
    for ty, with_im in jobs:
        stem = os.path.join(out, ty + (".imatrix" if with_im else ""))
        cmd = [codec, "quantize", ty, str(COLS), inp, stem + ".bin"] + ([imf] if with_im else [])
        subprocess.run(cmd, check=True)
        subprocess.run([codec, "dequantize", ty, stem + ".bin", stem + ".deq.f32"], check=True)
    print("wrote %d goldens to %s" % (len(jobs), os.path.normpath(out)))


if __name__ == "__main__":
    main()
