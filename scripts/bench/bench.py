#!/usr/bin/env python3
"""The measuring loop of scripts/bench-quantize.sh (stdlib only; run it through that script).

For each type, runs llama-quantize and qforge on the same input, interleaved (A B, then B A, ...),
REPS times each, under `/usr/bin/time -v`; checks that the two outputs are byte-identical; and
prints a Markdown table of medians. Per run it records:

  wall      seconds from fork to exit (time.perf_counter around the process)
  cpu       user + sys seconds (GNU time)
  maxrss    peak resident set size (GNU time's "Maximum resident set size", i.e. ru_maxrss):
            it includes the pages of the mmap'ed input that were touched, which both tools map
  anon      peak anonymous resident memory (RssAnon in /proc/PID/status, sampled every 20 ms):
            the heap, i.e. the buffers each tool allocates, without the mapped input file

With --md FILE the table (and the run's machine, load and command) replaces what lies between
the markers <!-- bench-quantize:begin --> and <!-- bench-quantize:end --> in FILE (appended when
the markers are absent); the rest of FILE is left as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BEGIN = "<!-- bench-quantize:begin -->"
END = "<!-- bench-quantize:end -->"


def read_status(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("RssAnon", "RssFile", "VmHWM"):
                    out[k] = int(v.split()[0])  # kB
    except OSError:
        pass
    return out


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def gnu_time_field(text: str, name: str) -> str:
    m = re.search(r"^\s*" + re.escape(name) + r".*?:\s*(\S+)\s*$", text, re.M)
    if not m:
        raise RuntimeError(f"no '{name}' in GNU time output:\n{text}")
    return m.group(1)


def elapsed_seconds(s: str) -> float:
    parts = [float(p) for p in s.split(":")]
    t = 0.0
    for p in parts:
        t = t * 60 + p
    return t


def run_measured(cmd: list[str], log: Path) -> dict:
    """Runs cmd under /usr/bin/time -v, sampling the tool's RssAnon/RssFile."""
    with tempfile.NamedTemporaryFile("r", suffix=".time", delete=False) as tf:
        tpath = tf.name
    full = ["/usr/bin/time", "-v", "-o", tpath, "--"] + cmd
    peak_anon = peak_file = 0
    with open(log, "wb") as lf:
        t0 = time.perf_counter()
        p = subprocess.Popen(full, stdout=lf, stderr=subprocess.STDOUT)
        child = None
        while p.poll() is None:
            if child is None:
                kids = children(p.pid)
                child = kids[0] if kids else None
            if child is not None:
                st = read_status(child)
                peak_anon = max(peak_anon, st.get("RssAnon", 0))
                peak_file = max(peak_file, st.get("RssFile", 0))
            time.sleep(0.02)
        wall = time.perf_counter() - t0
    text = Path(tpath).read_text()
    os.unlink(tpath)
    status = int(gnu_time_field(text, "Exit status"))
    if p.returncode != 0 or status != 0:
        raise RuntimeError(f"command failed ({p.returncode}): {shlex.join(cmd)}; see {log}")
    return {
        "wall": wall,
        "wall_gnu": elapsed_seconds(gnu_time_field(text, "Elapsed (wall clock) time (h:mm:ss or m:ss)")),
        "user": float(gnu_time_field(text, "User time (seconds)")),
        "sys": float(gnu_time_field(text, "System time (seconds)")),
        "maxrss_kb": int(gnu_time_field(text, "Maximum resident set size (kbytes)")),
        "peak_anon_kb": peak_anon,
        "peak_file_kb": peak_file,
    }


def same_bytes(a: Path, b: Path) -> bool:
    return subprocess.run(["cmp", "-s", str(a), str(b)]).returncode == 0


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mib(kb_or_bytes: float, unit: str = "kb") -> float:
    return kb_or_bytes / 1024 if unit == "kb" else kb_or_bytes / (1 << 20)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--llama-quantize", required=True)
    ap.add_argument("--qforge", required=True)
    ap.add_argument("--types", default="Q8_0,Q4_K_M,Q6_K,IQ4_XS")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--outdir", type=Path, required=True)
    ap.add_argument("--imatrix", type=Path, help="also run the --imatrix-types with this imatrix")
    ap.add_argument("--imatrix-types", default="Q4_K_M,IQ4_XS")
    ap.add_argument("--n-params", type=int, default=0, help="parameters of the model, for M weights/s")
    ap.add_argument("--md", type=Path, help="write the table into this Markdown file between the markers")
    ap.add_argument("--json", type=Path, help="write every run's figures here")
    ap.add_argument("--command-line", default="", help="the command to quote in --md")
    ap.add_argument("--qforge-rev", default="", help="which qforge was timed, for --md")
    a = ap.parse_args()

    a.outdir.mkdir(parents=True, exist_ok=True)
    cases = [(t, None) for t in a.types.split(",") if t]
    if a.imatrix:
        cases += [(t, a.imatrix) for t in a.imatrix_types.split(",") if t]
    tools = {"llama": a.llama_quantize, "qforge": a.qforge}
    load_before = loadavg()
    # Warm the page cache so that neither tool pays for the first read of the input.
    subprocess.run(["cat", str(a.model)], stdout=subprocess.DEVNULL, check=True)

    results = []
    all_identical = True
    n_pairs = n_same = 0
    for ty, im in cases:
        label = ty + ("+imatrix" if im else "")
        runs: dict[str, list[dict]] = {"llama": [], "qforge": []}
        identical = True
        out_sizes = {}
        for rep in range(a.reps):
            order = ["llama", "qforge"] if rep % 2 == 0 else ["qforge", "llama"]
            outs = {}
            for tool in order:
                out = a.outdir / f"{tool}-{label}.gguf"
                if out.exists():
                    out.unlink()
                cmd = [tools[tool]]
                if tool == "qforge":
                    cmd.append("quantize")
                if im:
                    cmd += ["--imatrix", str(im)]
                cmd += [str(a.model), str(out), ty, str(a.threads)]
                r = run_measured(cmd, a.outdir / f"{tool}-{label}.log")
                runs[tool].append(r)
                outs[tool] = out
                print(f"  {label:16s} rep {rep + 1}/{a.reps} {tool:7s} wall {r['wall']:7.2f} s  cpu {r['user'] + r['sys']:7.2f} s  "
                      f"maxrss {mib(r['maxrss_kb']):7.0f} MiB  anon {mib(r['peak_anon_kb']):7.0f} MiB", file=sys.stderr, flush=True)
            same = same_bytes(outs["llama"], outs["qforge"])
            identical &= same
            n_pairs += 1
            n_same += same
            if not same:
                print(f"  {label}: OUTPUTS DIFFER ({outs['llama']} vs {outs['qforge']})", file=sys.stderr)
            out_sizes = {t: outs[t].stat().st_size for t in outs}
            if same:
                for t in outs:
                    outs[t].unlink()
        all_identical &= identical
        med = {}
        for tool, rs in runs.items():
            med[tool] = {
                "wall": statistics.median(r["wall"] for r in rs),
                "cpu": statistics.median(r["user"] + r["sys"] for r in rs),
                "maxrss_mib": statistics.median(mib(r["maxrss_kb"]) for r in rs),
                "anon_mib": statistics.median(mib(r["peak_anon_kb"]) for r in rs),
            }
        results.append({"type": label, "identical": identical, "out_bytes": out_sizes, "median": med, "runs": runs})
    load_after = loadavg()

    in_bytes = a.model.stat().st_size
    lines = []
    lines.append("| type | out MiB | llama-quantize wall s | qforge wall s | **speed-up** (llama/qforge wall) | llama cpu s | qforge cpu s | cpu ratio | qforge M weights/s (wall) | llama maxRSS MiB | qforge maxRSS MiB | llama peak anon MiB | qforge peak anon MiB | identical |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
    for r in results:
        l, q = r["median"]["llama"], r["median"]["qforge"]
        out_mib = mib(r["out_bytes"].get("qforge", 0), "b")
        mws = f"{a.n_params / q['wall'] / 1e6:.1f}" if a.n_params else "-"
        lines.append(
            f"| {r['type']} | {out_mib:.0f} | {l['wall']:.2f} | {q['wall']:.2f} | **{l['wall'] / q['wall']:.2f}x** | "
            f"{l['cpu']:.2f} | {q['cpu']:.2f} | {l['cpu'] / q['cpu']:.2f}x | {mws} | {l['maxrss_mib']:.0f} | {q['maxrss_mib']:.0f} | "
            f"{l['anon_mib']:.0f} | {q['anon_mib']:.0f} | {'yes' if r['identical'] else '**NO**'} |"
        )
    table = "\n".join(lines)
    print(table)
    print(f"outputs byte-identical in {n_same} of {n_pairs} pairs", file=sys.stderr)
    print(f"load average before {load_before}, after {load_after}; input {mib(in_bytes, 'b'):.0f} MiB", file=sys.stderr)

    if a.json:
        a.json.write_text(json.dumps({"results": results, "load_before": load_before, "load_after": load_after}, indent=1))
    if a.md:
        block = "\n".join([
            BEGIN,
            f"Generated by `scripts/bench-quantize.sh` on {time.strftime('%Y-%m-%d %H:%M %Z')}: "
            f"{os.cpu_count()} CPUs ({cpu_model()}), load average {load_before} before and {load_after} after the run.",
            "",
            "```",
            a.command_line or "scripts/bench-quantize.sh",
            "```",
            "",
            (f"qforge: {a.qforge_rev}; " if a.qforge_rev else "")
            + "llama-quantize: llama.cpp 0c1e57098 built by scripts/build-oracle.sh (GGML_NATIVE, Release).",
            "",
            f"Input: `{a.model.name}`, {mib(in_bytes, 'b'):.0f} MiB F16"
            + (f", {a.n_params / 1e6:.0f}M parameters" if a.n_params else "")
            + f"; {a.threads} threads for both tools; median of {a.reps} interleaved runs each. "
            "Wall = fork to exit; cpu = user + sys; maxRSS = GNU time's peak RSS (includes the touched pages of the mmap'ed input); "
            "peak anon = peak RssAnon sampled every 20 ms (the tools' own buffers).",
            "",
            f"Outputs byte-identical (`cmp`) in {n_same} of {n_pairs} pairs.",
            "",
            table,
            END,
        ])
        text = a.md.read_text() if a.md.exists() else ""
        if BEGIN in text and END in text:
            pre, rest = text.split(BEGIN, 1)
            _, post = rest.split(END, 1)
            text = pre + block + post
        else:
            text = text + ("\n" if text and not text.endswith("\n") else "") + block + "\n"
        a.md.write_text(text)
        print(f"wrote the table into {a.md}", file=sys.stderr)
    return 0 if all_identical else 1


if __name__ == "__main__":
    sys.exit(main())
