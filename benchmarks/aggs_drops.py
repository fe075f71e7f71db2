"""Issue #26's plus-30 target on the drops it names: the whole ``featurestore ingest`` of the
4.8 M-line benchmark drops, default repository against ten declared columns and thirty more
SPEC §3a features (target: at most 1.5x).

    python benchmarks/aggs_drops.py [--rounds 3] [--sparse DIR] [--wide DIR] [--only sparse]
        [--before CHECKOUT]

The drops are those ``benchmarks/ingest.py --issue-drop`` (sparse: 404 MB gzip, issue #27's)
and ``--issue-drop --wide-filler`` (2.7 GB gzip) generate: one day, 48 files, 4.8 M lines x
1,057 columns, 500,000 customers. ``--sparse``/``--wide`` name their work folders (the drop is
``DIR/raw``; generated there when missing, a few minutes each).

Each round runs, one after the other and into an empty store each time, the user's commands:
``featurestore ingest RAW --store S --json`` with its own LocalCluster (``--workers``), then
the same on an already running cluster of as many workers (``--scheduler``), once with the
default repository and once with the plus-30 one (``featurestore apply --repo`` first, not
timed: a repository is applied once, not every day). Prints per drop and cluster shape the
whole command's seconds per round, the ratio plus-30 / default (median of the per-round
ratios), the steps of the ``--json`` report (ingest step, materialization), and, on the running
cluster, the CPU seconds of the command, the scheduler and the workers with their ratio (a
loaded machine moves the CPU ratio less than the wall's). The plus-30 repository is
``benchmarks/aggs.py``'s (``repo_text(thirty_features(), DECLARED)``), whose 60-day history is
the second, harsher figure (``python benchmarks/aggs.py --only ingest``): there per-day fixed costs dominate.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from aggs import DECLARED, repo_text, thirty_features
from ingest import _generate_issue_drop

from featurestore.generate import (
    DEFAULT_FILLER_DENSITY,
    SPARSE_FILLER_DENSITY,
    generate_weblog,
)

REPOS = ("default", "plus30")
TARGET = 1.5


def _cpu(who: int = resource.RUSAGE_SELF) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _cluster_cpu(client) -> float:
    """CPU seconds so far of this process (the running cluster's scheduler), the commands it
    waited for, and the running cluster's worker processes."""
    return _cpu() + _cpu(resource.RUSAGE_CHILDREN) + sum(client.run(_cpu).values())


def _featurestore(*args: str, code: Path = ROOT) -> subprocess.CompletedProcess:
    """``python -m featurestore ARGS`` with the code of checkout ``code``."""
    import os

    return subprocess.run([sys.executable, "-m", "featurestore", *args], cwd=code, check=True,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(code)})


def _command(raw: Path, store: Path, repo: Path | None, extra: list[str], client,
             code: Path = ROOT) -> dict:
    """One whole ``featurestore ingest`` into an empty store (the code of checkout ``code``):
    seconds, report steps, and (on the running cluster, where every process is measurable)
    CPU seconds."""
    shutil.rmtree(store, ignore_errors=True)
    if repo is not None:
        _featurestore("apply", "--repo", str(repo), "--store", str(store), code=code)
    cpu = _cluster_cpu(client)
    start = time.perf_counter()
    out = _featurestore("ingest", str(raw), "--store", str(store), "--json", "--no-progress",
                        *extra, code=code)
    seconds = time.perf_counter() - start
    report = json.loads(out.stdout)
    assert report["ok"] and report["files_ingested"] > 0, report
    return {"whole": round(seconds, 3), "cpu": round(_cluster_cpu(client) - cpu, 2),
            "ingest": report["seconds"],
            "materialize": (report.get("materialize") or {}).get("seconds", 0.0)}


def _drop(work: Path, wide: bool) -> Path:
    raw = work / "raw"
    if not raw.exists():
        print(f"generating the {'wide' if wide else 'sparse'} drop in {raw} ...", flush=True)
        _generate_issue_drop(raw, rows=4_800_000, density=DEFAULT_FILLER_DENSITY if wide
                             else SPARSE_FILLER_DENSITY)
    return raw


def _warm(work: Path, scheduler: str, client) -> None:
    """Fill numba's on-disk cache and the running cluster's first-use costs on a tiny drop."""
    tiny = work / "tiny"
    generate_weblog(str(tiny), days=1, rows_per_day=200, parts=1)
    for extra in (["--workers", "1"], ["--scheduler", scheduler]):
        _command(tiny, work / "tiny-store", None, extra, client)
    shutil.rmtree(work / "tiny-store", ignore_errors=True)


def _median_ratio(runs: dict[str, list[dict]], key: str) -> float:
    return statistics.median(p[key] / d[key] for d, p in
                             zip(runs["default"], runs["plus30"], strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sparse", default=str(ROOT / "benchmarks" / "_work" /
                                            f"ingest-issue-drop-d{SPARSE_FILLER_DENSITY:g}"),
                    help="work folder of the sparse drop (the drop is DIR/raw)")
    ap.add_argument("--wide", default=str(ROOT / "benchmarks" / "_work" / "ingest-issue-drop"),
                    help="work folder of the wide drop (the drop is DIR/raw)")
    ap.add_argument("--only", choices=["sparse", "wide"])
    ap.add_argument("--before", help="another checkout: each round also runs both repositories' "
                    "commands with its code (own cluster only: the running cluster's workers "
                    "hold this checkout's code), and prints this code's seconds over its, "
                    "per repository")
    args = ap.parse_args()
    before = Path(args.before).resolve() if args.before else None

    from distributed import Client

    from featurestore.cluster import local_cluster

    scratch = Path(tempfile.mkdtemp(prefix="aggs-drops-"))
    plus30 = scratch / "plus30.yaml"
    plus30.write_text(repo_text(thirty_features(), DECLARED))
    drops = [(name, Path(getattr(args, name))) for name in ("sparse", "wide")
             if args.only in (None, name)]
    try:
        with local_cluster(args.workers) as cluster, Client(cluster) as client:
            _warm(scratch, cluster.scheduler_address, client)
            shapes = {"own cluster": ["--workers", str(args.workers)],
                      "running cluster": ["--scheduler", cluster.scheduler_address]}
            for name, work in drops:
                raw = _drop(work, wide=name == "wide")
                runs = {(shape, repo): [] for shape in shapes for repo in REPOS}
                then = {repo: [] for repo in REPOS}  # --before's, own cluster
                for _ in range(args.rounds):
                    for shape, extra in shapes.items():
                        for repo in REPOS:
                            runs[shape, repo].append(_command(
                                raw, scratch / "store", plus30 if repo == "plus30" else None,
                                extra, client))
                            if before is not None and shape == "own cluster":
                                then[repo].append(_command(
                                    raw, scratch / "store", plus30 if repo == "plus30" else
                                    None, extra, client, code=before))
                if before is not None:
                    line = {"measure": "drops, this code / --before", "drop": name,
                            "cluster": "own cluster", "before": str(before)}
                    for repo in REPOS:
                        now = runs["own cluster", repo]
                        line[f"ratio_{repo}"] = round(_median_ratio(
                            {"default": then[repo], "plus30": now}, "whole"), 3)
                        line[f"seconds_{repo}"] = [r["whole"] for r in now]
                        line[f"seconds_{repo}_before"] = [r["whole"] for r in then[repo]]
                    print(json.dumps(line), flush=True)
                for shape in shapes:
                    by_repo = {repo: runs[shape, repo] for repo in REPOS}
                    line = {"measure": "drops", "drop": name, "cluster": shape,
                            "ratio": round(_median_ratio(by_repo, "whole"), 3),
                            "target": TARGET}
                    for repo in REPOS:
                        line[f"seconds_{repo}"] = [r["whole"] for r in by_repo[repo]]
                        line[f"ingest_step_{repo}"] = [r["ingest"] for r in by_repo[repo]]
                        line[f"materialize_{repo}"] = [r["materialize"] for r in by_repo[repo]]
                    if shape == "running cluster":  # (an own cluster's forked workers are
                        # not all reaped by the command, so their CPU is not counted)
                        for repo in REPOS:
                            line[f"cpu_seconds_{repo}"] = [r["cpu"] for r in by_repo[repo]]
                        line["cpu_ratio"] = round(_median_ratio(by_repo, "cpu"), 3)
                    print(json.dumps(line), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
