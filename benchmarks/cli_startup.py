"""How fast the ``featurestore`` command answers (issue #30): ``--help``, usage errors and a
no-op ``ingest`` (nothing new) on a 45-day store, against the targets.

    python benchmarks/cli_startup.py [--baseline /path/to/other/checkout] [--rounds 5]
        [--days 45] [--workdir DIR]

Generates ``--days`` daily drops (``featurestore generate RAW --days 45 --customers 400
--products 40 --rows-per-day 600 --parts 1 --seed 3``, the README's store) and ingests them
once; then, in interleaved rounds, times each command in a fresh interpreter for this checkout
and, with ``--baseline``, another one (e.g. main before issue #30) on its own copy of the store:

* ``--help``: ``featurestore --help`` (target 0.3 s);
* ``usage error``: ``featurestore ingest`` without its arguments (argparse, target 0.3 s);
* ``no store``: ``featurestore tables`` with no store given anywhere (target 0.3 s);
* ``no-op ingest``: ``featurestore ingest RAW --store STORE`` with nothing new (target 1.5 s).

Prints every round, the medians against the targets and, with a baseline, baseline/this
ratios side by side. The figures in docs/performance.md come from this script.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Command name -> (arguments, expected exit code, target seconds).
CASES = {
    "--help": (["--help"], 0, 0.3),
    "usage error": (["ingest"], 2, 0.3),
    "no store": (["tables"], 2, 0.3),
    "no-op ingest": (["ingest", "RAW", "--store", "STORE", "--no-progress"], 0, 1.5),
}


def _env(code: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    return {**env, "PYTHONPATH": str(code)}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def featurestore(code: Path, args: list[str], cwd: Path, expect: int = 0
                 ) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``featurestore ARGS`` run with ``code`` first on the
    path. CPU time (user + system of the process and its children) barely moves when other
    jobs share the cores; wall time is the target's measure on an idle machine."""
    cpu, start = _cpu(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "featurestore", *args], env=_env(code),
                          cwd=cwd, capture_output=True, text=True, timeout=900)
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    if proc.returncode != expect:
        raise SystemExit(f"featurestore {' '.join(args)} ({code}) exited {proc.returncode}, "
                         f"expected {expect}:\n{proc.stdout}\n{proc.stderr}")
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="another checkout to time side by side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--workdir", type=Path, help="keep the data here (default: a temp dir)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="cli-startup-"))
    work.mkdir(parents=True, exist_ok=True)
    raw, built = work / "raw", work / "store"
    if not built.exists():
        print(f"generating {args.days} drops and ingesting them once into {built} ...",
              flush=True)
        featurestore(ROOT, ["generate", str(raw), "--days", str(args.days), "--customers",
                            "400", "--products", "40", "--rows-per-day", "600", "--parts",
                            "1", "--seed", "3"], work)
        featurestore(ROOT, ["ingest", str(raw), "--store", str(built), "--no-progress"], work)
    checkouts = {"this": ROOT}
    if args.baseline:
        checkouts["baseline"] = args.baseline.resolve()
    stores = {}
    for name in checkouts:  # each checkout's no-op ingest on its own copy
        stores[name] = work / f"store-{name}"
        if not stores[name].exists():
            shutil.copytree(built, stores[name])
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in range(1, args.rounds + 1):
        for case, (argv, expect, _) in CASES.items():
            for name, code in checkouts.items():
                argv_here = [str(raw) if a == "RAW" else str(stores[name]) if a == "STORE"
                             else a for a in argv]
                seconds, cpu = featurestore(code, argv_here, work, expect)
                times.setdefault((case, name), []).append((seconds, cpu))
                print(f"round {r}  {case:<13} {name:<8} {seconds:6.3f} s wall  {cpu:6.3f} s "
                      "cpu", flush=True)
    print()
    print(f"load average {os.getloadavg()[0]:.1f} (1 min) at the end; medians, seconds:")
    header = f"{'command':<14}{'target':>8}" + "".join(
        f"{n + ' wall':>14}{n + ' cpu':>13}" for n in checkouts)
    print(header + ("  baseline/this wall, cpu" if args.baseline else ""))
    for case, (_, _, target) in CASES.items():
        wall = {n: statistics.median(w for w, _ in times[(case, n)]) for n in checkouts}
        cpu = {n: statistics.median(c for _, c in times[(case, n)]) for n in checkouts}
        row = f"{case:<14}{target:>7.1f}s" + "".join(
            f"{wall[n]:>13.3f}s{cpu[n]:>12.3f}s" for n in checkouts)
        row += "  " + ("ok" if wall["this"] < target else "OVER")
        if args.baseline:
            row += (f"  {wall['baseline'] / wall['this']:.1f}x, "
                    f"{cpu['baseline'] / cpu['this']:.1f}x")
        print(row)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
