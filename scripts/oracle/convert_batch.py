#!/usr/bin/env python3
"""Runs the pinned convert_hf_to_gguf.py several times in one Python process, so that torch and
transformers are imported once (each separate run spends seconds importing them).

    PYTHONPATH=<llama.cpp>/gguf-py python scripts/oracle/convert_batch.py CONVERTER \
        MODEL_DIR:OUTTYPE:OUTFILE [...]

Each job runs the converter's own `main()` with argv `MODEL_DIR --outtype OUTTYPE --outfile
OUTFILE`, exactly as a command line would. Prints `ok OUTFILE` or `failed OUTFILE: reason` per job;
exit status 1 when any job failed.
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback


def main() -> int:
    converter, jobs = sys.argv[1], sys.argv[2:]
    # As when the converter runs as a script: its directory (the `conversion` package) first.
    sys.path.insert(0, os.path.dirname(os.path.abspath(converter)))
    failed = 0
    for job in jobs:
        model, outtype, outfile = job.split(":", 2)
        sys.argv = [converter, model, "--outtype", outtype, "--outfile", outfile]
        try:
            runpy.run_path(converter, run_name="__main__")
            status = 0
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except Exception:  # noqa: BLE001 - reported per job
            traceback.print_exc()
            status = 1
        if status == 0:
            print(f"ok {outfile}", flush=True)
        else:
            failed += 1
            print(f"failed {outfile}: exit status {status}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
