"""kill -9 trials: the real CLI killed at random moments of ingest, backfill (materialize) and
training-set (export), then run again with no manual step, compared with a clean run.

    PYTHONPATH=. python benchmarks/reliability.py --trials 20 [--seed 0]

The SPEC §3a repository of tests/reliability/test_kill9_aggs.py, backfill only, kill moments
over the whole run, a failed trial's store kept in DIR::

    PYTHONPATH=. python benchmarks/reliability.py --repo aggs --steps backfill --trials 60
        --fractions 0.02,1.0 --no-s3 --workdir DIR

Each trial copies the store as the clean run had it before one step, runs that step as
``python -m featurestore ...`` in its own process group, SIGKILLs the group (CLI, scheduler,
workers) after a random fraction of the step's clean duration, runs the same command again
and compares every table (and the training-set CSVs) with the clean run, row by row: rows
lost and rows duplicated must both be 0 and the next run must exit 0. A trial that fails keeps
its store and reports where it differs (:meth:`Harness.trial`).

When ``benchmarks/reliability_s3.py`` exists, its ``run_s3_fault_trials(trials, seed)`` runs
too and its figures are printed beside these.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))
STEPS = ("ingest", "backfill", "training-set")


def make_drops(raw: Path, seed: int = 3) -> None:
    """Small drops with bad rows and late hits, long enough (33 days) for a training set with
    a complete 30-day label window."""
    from featurestore.generate import generate_weblog

    generate_weblog(str(raw), days=33, customers=60, products=15, rows_per_day=150, parts=1,
                    seed=seed, bad_rows=0.01, late_fraction=0.05)


def step_args(step: str, raw: Path, store: Path, out: Path) -> list[str]:
    """The CLI arguments of one step (one local worker: a kill hits a busy cluster)."""
    common = ["--store", str(store), "--workers", "1"]
    if step == "ingest":
        return ["ingest", str(raw), *common, "--no-progress"]
    if step == "backfill":
        return ["backfill", *common]
    return ["training-set", *common, "--out", str(out), "--format", "csv"]


def run_cli(args: list[str], kill_after: float | None = None,
            kill_when: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Run ``python -m featurestore ARGS`` in its own process group.

    Args:
        args: the command line after ``featurestore``.
        kill_after: SIGKILL the whole group after this many seconds if still running.
        kill_when: SIGKILL the whole group as soon as this returns True (polled every 5 ms:
            a kill point set by what the command has written, whatever the machine's speed).

    Returns:
        ``{"rc", "seconds", "killed", "stderr"}``; ``killed`` is False when the command
        finished before the kill moment.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "featurestore", *args], cwd=ROOT,
                                env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=err)
        killed = False
        try:
            if kill_when is None:
                proc.wait(timeout=kill_after)
            else:
                while proc.poll() is None:
                    if kill_when():
                        raise subprocess.TimeoutExpired(args, 0)
                    time.sleep(0.005)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # CLI, scheduler and workers at once
            proc.wait()
            killed = True
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return {"rc": proc.returncode, "seconds": time.monotonic() - started, "killed": killed,
            "stderr": stderr}


def snapshot(store: Path, out: Path) -> dict[str, pd.DataFrame]:
    """Every table of the store (top-level tables and the quarantine) and every training-set
    CSV, as frames to compare row by row."""
    tables: dict[str, pd.DataFrame] = {}
    names = [p.name for p in store.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))]
    for name in [*sorted(names), "_quarantine/weblog"]:
        if (store / name).exists():
            tables[name] = _as_text(pd.read_parquet(store / name))
    if out.exists():
        for csv in sorted(out.rglob("*.csv")):
            tables[f"out/{csv.relative_to(out)}"] = _as_text(pd.read_csv(csv, header=None))
    return tables


def _as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Every value as text (raw quarantined lines are bytes), so rows hash alike."""
    return df.apply(lambda col: col.map(lambda v: v.hex() if isinstance(v, bytes) else str(v)))


def compare(clean: dict[str, pd.DataFrame], got: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Rows of the clean run missing from ``got`` (lost) and extra in it (duplicated), over
    every table, as multisets of rows; a table missing whole counts all its rows lost."""
    per_table = table_diffs(clean, got)
    return {"rows_lost": sum(d["lost"] for d in per_table.values()),
            "rows_duplicated": sum(d["duplicated"] for d in per_table.values())}


def table_diffs(clean: dict[str, pd.DataFrame], got: dict[str, pd.DataFrame]
                ) -> dict[str, dict[str, Any]]:
    """Per table that differs: rows lost and duplicated (as in :func:`compare`), and up to
    three distinct rows of each as text, so a failed trial says where it differs.

    Args:
        clean: the clean run's tables (:func:`snapshot`).
        got: the tables after the kill and the next run.

    Returns:
        Table -> ``{"lost", "duplicated", "lost_rows", "extra_rows"}``, only tables that differ.
    """
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(clean) | set(got)):
        want = _row_counts(clean.get(name))
        have = _row_counts(got.get(name))
        lost, extra = want - have, have - want
        if lost or extra:
            out[name] = {"lost": sum(lost.values()), "duplicated": sum(extra.values()),
                         "lost_rows": _rows_of(clean.get(name), lost),
                         "extra_rows": _rows_of(got.get(name), extra)}
    return out


def _rows_of(df: pd.DataFrame | None, hashes: collections.Counter, most: int = 3) -> list[str]:
    """Up to ``most`` distinct rows of ``df`` whose hash is in ``hashes``, as JSON text with
    how many of each are lost or extra (``{"row": {...}, "count": n}``)."""
    if df is None or not hashes:
        return []
    df = df[sorted(df.columns)]
    keys = pd.util.hash_pandas_object(df, index=False).to_numpy()
    out = []
    for key, count in sorted(hashes.items(), key=lambda kv: -kv[1])[:most]:
        row = df[keys == key].iloc[0].to_dict()
        out.append(json.dumps({"row": row, "count": count}, default=str))
    return out


def _row_counts(df: pd.DataFrame | None) -> collections.Counter:
    if df is None:
        return collections.Counter()
    df = df[sorted(df.columns)]
    return collections.Counter(pd.util.hash_pandas_object(df, index=False).tolist())


class Harness:
    """A clean run of the three steps (the reference), then kill trials against it."""

    def __init__(self, work: Path, seed: int = 3, repo: Path | None = None,
                 steps: tuple[str, ...] = STEPS,
                 rerun: Callable[[list[str]], dict[str, Any]] | None = None) -> None:
        """Make the drops and run the clean reference, one CLI process per step.

        Args:
            work: an empty folder for the drops, the clean run and the trials.
            seed: the drops' seed.
            repo: a feature repository to ``apply`` first.
            steps: the steps of the clean run (and of the trials).
            rerun: how the run after a kill runs, given the step's CLI arguments
                (default :func:`run_cli`: a new process with its own cluster; the test
                suite runs it in its own process, on its cluster).
        """
        self.work = work
        self.rerun = rerun or run_cli
        self.raw = work / "raw"
        make_drops(self.raw, seed)
        self.before: dict[str, Path] = {}   # the store as it was before each step
        self.after: dict[str, dict[str, pd.DataFrame]] = {}
        self.seconds: dict[str, float] = {}
        store, out = work / "clean" / "store", work / "clean" / "out"
        if repo is not None:  # a repository recorded first (e.g. with SPEC §3a features)
            res = run_cli(["apply", "--repo", str(repo), "--store", str(store)])
            if res["rc"] != 0:
                raise RuntimeError(f"apply failed: {res['stderr'][-2000:]}")
        for step in steps:
            self.before[step] = work / f"before-{step}"
            if store.exists():
                shutil.copytree(store, self.before[step])
            res = run_cli(step_args(step, self.raw, store, out))
            if res["rc"] != 0:
                raise RuntimeError(f"clean {step} failed: {res['stderr'][-2000:]}")
            self.seconds[step] = res["seconds"]
            self.after[step] = snapshot(store, out)

    def trial(self, step: str, fraction: float, name: str) -> dict[str, Any]:
        """Kill ``step`` after ``fraction`` of its clean duration, run it again, compare.

        A run that ended before its kill moment (the load dropped) is redone from the same
        store with the kill moment rescaled to the duration just seen (up to 3 attempts).

        Args:
            step: one of :data:`STEPS`.
            fraction: the kill moment as a fraction of the clean run's duration.
            name: a folder name for this trial under the work folder.

        Returns:
            the trial's figures: step, kill second, whether the kill landed, the next run's
            exit code (and error), rows lost and duplicated.
        """
        store, out = self.work / name / "store", self.work / name / "out"
        for _ in range(3):  # the machine's load changes: a run that beat the kill is redone
            shutil.rmtree(self.work / name, ignore_errors=True)
            if self.before[step].exists():
                shutil.copytree(self.before[step], store)
            kill_after = round(fraction * self.seconds[step], 2)
            first = run_cli(step_args(step, self.raw, store, out), kill_after=kill_after)
            if first["killed"]:
                break
            self.seconds[step] = first["seconds"]  # a whole run's duration under today's load
        after_kill = _listing(store)
        again = self.rerun(step_args(step, self.raw, store, out))  # no manual step between
        try:
            got, unreadable = snapshot(store, out), None
        except Exception as exc:  # noqa: BLE001  (a table left unreadable: reported below)
            got, unreadable = {}, f"{type(exc).__name__}: {exc}"
        figures = compare(self.after[step], got)
        result = {"step": step, "kill_after": kill_after, "killed": first["killed"],
                  "next_rc": again["rc"], "next_error": again["stderr"].strip()[-300:],
                  **figures}
        if unreadable:
            result["unreadable"] = unreadable
        if again["rc"] != 0 or figures["rows_lost"] or figures["rows_duplicated"]:
            # everything the next look needs: per-table differences, both runs' stderr, the
            # store's files after the kill; the trial's folder is kept (``kept``)
            result.update(tables_differ=table_diffs(self.after[step], got),
                          killed_seconds=round(first["seconds"], 2),
                          killed_stderr=first["stderr"].strip()[-3000:],
                          next_stderr=again["stderr"].strip()[-3000:],
                          files_after_kill=collections.Counter(
                              f.split("/", 1)[0] for f in after_kill),
                          kept=str(self.work / name))
            (self.work / name / "trial.json").write_text(json.dumps(
                {**result, "files_after_kill": after_kill}, indent=1, default=str))
        else:
            shutil.rmtree(self.work / name)
        return result


def _listing(store: Path) -> list[str]:
    """Every file under ``store`` with its size (what a kill left), for a failed trial's
    report (``trial.json``; the result counts them per top-level folder)."""
    if not store.exists():
        return []
    return sorted(f"{p.relative_to(store)} {p.stat().st_size}" for p in store.rglob("*")
                  if p.is_file())


def run_kill_trials(trials: int, seed: int, work: Path, repo: Path | None = None,
                    steps: tuple[str, ...] = STEPS,
                    fractions: tuple[float, float] = (0.2, 0.95)) -> dict[str, Any]:
    """``trials`` kill trials, cycling through ``steps``, kill moments drawn with ``seed``.

    Args:
        trials: how many kill trials.
        seed: the kill moments' seed.
        work: the work folder (a failed trial's store is kept there, with ``trial.json``).
        repo: a repository recorded before the clean run (``apply``), e.g. SPEC §3a features.
        steps: the steps killed; the clean run runs every step up to the last of them.
        fractions: kill moments are drawn uniformly in this range of a whole run's duration.

    Returns:
        the summary (trials, kills that landed per step, rows lost, rows duplicated,
        next-run failures) and the list of trials.
    """
    rng = random.Random(seed)
    built = STEPS[:max(STEPS.index(s) for s in steps) + 1]
    harness = Harness(work, repo=repo, steps=built)
    results = []
    for i in range(trials):
        result = harness.trial(steps[i % len(steps)], rng.uniform(*fractions), f"trial-{i}")
        results.append(result)
        print(f"trial {i}: {result['step']} killed after {result['kill_after']} s "
              f"(landed {result['killed']}): next run exit {result['next_rc']}, rows lost "
              f"{result['rows_lost']}, duplicated {result['rows_duplicated']}", flush=True)
        if "kept" in result:  # say it at once: a long run may be cut short
            print(f"trial {i} differs from the clean run: {result['kept']}/trial.json",
                  flush=True)
    return {
        "trials": len(results),
        "kills_landed": {s: sum(r["killed"] for r in results if r["step"] == s) for s in steps},
        "rows_lost": sum(r["rows_lost"] for r in results),
        "rows_duplicated": sum(r["rows_duplicated"] for r in results),
        "next_run_failures": sum(r["next_rc"] != 0 for r in results),
        "full_run_seconds": {s: round(v, 1) for s, v in harness.seconds.items()},
        "results": results,
    }


def aggs_repo(path: Path) -> Path:
    """The repository of ``tests/reliability/test_kill9_aggs.py`` (the default one plus a
    SPEC §3a feature of every kind), written to ``path``."""
    from tests.reliability.test_kill9_aggs import aggs_repo as write

    write(path)
    return path


def _s3_trials(trials: int, seed: int) -> dict | None:
    """The S3 fault trials of ``benchmarks/reliability_s3.py``, when that module exists."""
    path = Path(__file__).with_name("reliability_s3.py")
    if not path.exists():
        print("note: benchmarks/reliability_s3.py is absent: no S3 fault trials run")
        return None
    spec = importlib.util.spec_from_file_location("reliability_s3", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_s3_fault_trials(trials, seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=6, help="kill trials (cycling steps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repo", metavar="PATH|aggs",
                        help="a repository to apply before the clean run; 'aggs': the default "
                             "one plus a SPEC §3a feature of every kind (the kill -9 test's)")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help=f"comma-separated steps to kill, of {','.join(STEPS)}")
    parser.add_argument("--fractions", default="0.2,0.95", metavar="LO,HI",
                        help="kill moments, as fractions of a whole run's duration")
    parser.add_argument("--workdir", metavar="DIR",
                        help="keep the work folder here (failed trials' stores are kept in it)")
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 fault trials")
    parser.add_argument("--json", action="store_true", help="also print every trial as JSON")
    args = parser.parse_args(argv)
    steps = tuple(args.steps.split(","))
    if not set(steps) <= set(STEPS):
        parser.error(f"--steps: choose among {','.join(STEPS)}")
    lo, hi = (float(x) for x in args.fractions.split(","))
    with contextlib.ExitStack() as stack:
        if args.workdir:
            work = Path(args.workdir)
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fs-kill9-")))
        repo = None
        if args.repo == "aggs":
            repo = aggs_repo(work / "repo.yaml")
        elif args.repo:
            repo = Path(args.repo).resolve()
        summary = run_kill_trials(args.trials, args.seed, work, repo=repo, steps=steps,
                                  fractions=(lo, hi))
    if args.json:
        print(json.dumps(summary["results"], indent=1))
    print(f"kill -9 trials: {summary['trials']} (seed {args.seed}"
          + (f", repo {args.repo}" if args.repo else "") + "); kills landed mid-run: "
          + ", ".join(f"{s} {n}" for s, n in summary["kills_landed"].items()))
    print(f"  rows lost {summary['rows_lost']}, rows duplicated {summary['rows_duplicated']}, "
          f"next-run failures {summary['next_run_failures']}; full-run seconds (last seen) "
          + ", ".join(f"{s} {v}" for s, v in summary["full_run_seconds"].items()))
    s3 = None if args.no_s3 else _s3_trials(args.trials, args.seed)
    if s3 is not None:
        print("S3 fault trials: " + ", ".join(f"{k} {v}" for k, v in s3.items()
                                              if not isinstance(v, list | dict)))
    ok = not (summary["rows_lost"] or summary["rows_duplicated"]
              or summary["next_run_failures"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
