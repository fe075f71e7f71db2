"""What declared columns (SPEC §3a) cost the ingest's per-file work, measured side by side.

    PYTHONPATH=. python benchmarks/declared_columns.py [--rows 200000] [--rounds 5]
        [--baseline /path/to/a/checkout/before/the/change]

Generates one drop (1,057 columns, the generator's default filler), then per round times
``parse_file`` (decompress, scan, validate, gather, type: the ingest task's CPU work) of
every file with no declared column, with the four clickstream columns of ``featurestore
generate`` and with 10 declared columns; with ``--baseline``, the same no-column parse by
that checkout's code (a subprocess per round, interleaved), so "the seven columns' path did
not slow down" is one ratio of one run. Prints the median seconds and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FOUR = {"post_channel": "string", "visit_num": "int", "evar12": "float",
        "geo_country": "string"}
TEN = {**FOUR, "browser": "string", "os": "string", "language": "string",
       "visit_page_num": "int", "evar1": "string", "prop1": "string"}

#: Runs in a subprocess: time parse_file over the files with the given declared columns.
_TIMER = r"""
import json, sys, time
from pathlib import Path
from featurestore.sources.weblog import discover_files, parse_file
from featurestore.sources.weblog.scan import warm_up
root, declared = sys.argv[1], json.loads(sys.argv[2])
warm_up()
files, _ = discover_files(root)
data = [(f, Path(f.url).read_bytes()) for f in files]
kwargs = {"declared": declared} if declared else {}
parse_file(*data[0], **kwargs)  # compiled kernels loaded
start = time.perf_counter()
for raw, blob in data:
    parse_file(raw, blob, **kwargs)
print(time.perf_counter() - start)
"""


def _time(tree: Path, root: Path, declared: dict) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", _TIMER, str(root), json.dumps(declared)],
                         env=env, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000, help="hits in the drop")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--baseline", default=None,
                    help="a checkout before the change: its no-column parse is timed too")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from featurestore.generate import generate_weblog

    work = Path(tempfile.mkdtemp(prefix="declared-bench-"))
    try:
        generate_weblog(str(work / "raw"), days=1, customers=20_000, products=1_000,
                        rows_per_day=args.rows, parts=4, seed=1)
        variants = {"no declared column": (ROOT, {}), "4 declared": (ROOT, FOUR),
                    "10 declared": (ROOT, TEN)}
        if args.baseline:
            variants["baseline, no column"] = (Path(args.baseline), {})
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.rounds):
            for name, (tree, declared) in variants.items():
                times[name].append(_time(tree, work / "raw", declared))
        base = statistics.median(times["no declared column"])
        print(f"parse_file of {args.rows:,} lines (1,057 columns, 4 files), median of "
              f"{args.rounds} rounds:")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"  {name:<22} {med:7.3f} s   x{med / base:.3f} of no declared column")
        if args.baseline:
            ratios = [a / b for a, b in zip(times["no declared column"],
                                            times["baseline, no column"], strict=True)]
            print(f"  no declared column / baseline, per round median: "
                  f"x{statistics.median(ratios):.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
