"""CPU per stage of one ingest task, in process, this checkout against another, interleaved.

    python benchmarks/ingest_stages.py --raw DIR [--files 6] [--rounds 3] [--before REF]
                                       [--check] [--repo REPO.yaml]

Runs the ingest task (``_ingest_one``: what a worker runs for one file) on the first
``--files`` files of the drop under ``DIR`` (``benchmarks/ingest.py`` generates it), in this
process, one after the other, into a scratch store, and charges the thread's CPU time
(``time.thread_time``: what the task itself used, whatever else loads the machine) to stages:

| stage | what |
|---|---|
| read | the file's bytes from the raw store |
| md5 | the file's md5 (checked against the manifest, kept in the ledger) |
| decompress | ISA-L, the pieces the scan pulls (``parse._one_member_pieces``) |
| scan | ``scan.scan_pieces`` less the decompression it pulls |
| parse (rest) | the rest of ``parse_file``: checks, gathering the landing rows' fields |
| conform | the store's column types |
| partials | ``write_partials``: the file's partial daily aggregates, written |
| declared | the declared columns' typing (``parse._declared_columns``; ``--repo``; revisions before issue #26's ingest round also gathered them here, since then the scan's one sweep does, in parse (rest)) |
| ext build | the SPEC §3a partial states (``engine.partial_of``; ``--repo``) |
| ext write | their Arrow IPC file, published (``--repo``) |
| events write | ``write_events_file``: the events parquet |
| quarantine | the quarantine parquet |
| task (rest) | the rest of the task: the ledger record, the content marker, ... |

With ``--before REF`` the same files also run through the code of git revision ``REF`` (its
``featurestore`` package, extracted with ``git archive`` under another package name and
imported beside this one), alternating file by file, so both see the same load. ``--check``
then compares what the two wrote (events, partials, quarantine as Arrow tables, and the
ledger records less their time stamp) and fails on a difference.

``--repo`` runs the task with a repository's definitions (e.g. issue #26's plus-30 one,
``aggs.repo_text(aggs.thirty_features(), aggs.DECLARED)``): its declared columns are parsed
and its SPEC §3a partial states built and written, as ``featurestore ingest`` does after
``featurestore apply`` of it (without it: the built-in repository). Prints, per version, each
stage's median CPU milliseconds per file over the rounds, and the total.

The process runs with the environment our workers get (``featurestore.cluster.WORKER_CONFIG``:
glibc's malloc thresholds at 1 GiB, Arrow on the system allocator; it re-executes itself with
them when they are not set): without them each decompressed piece and output array is a fresh
``mmap`` that page-faults, ~18 ms a file more than a worker spends (issue #27, fifth round).
``--plain-env`` keeps the environment as it is.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = ["read", "md5", "decompress", "scan", "parse (rest)", "declared", "conform",
          "partials", "ext build", "ext write", "events write", "quarantine", "task (rest)"]


def _worker_environ() -> dict[str, str]:
    """The environment variables our clusters' nannies give each worker process."""
    from featurestore.cluster import WORKER_CONFIG

    prefix = "distributed.nanny.pre-spawn-environ."
    return {k[len(prefix):]: v for k, v in WORKER_CONFIG.items() if k.startswith(prefix)}


def _as_worker() -> None:
    """Re-execute this script with the workers' environment unless it already has it (glibc
    reads its malloc variables once, at start-up)."""
    wanted = _worker_environ()
    if all(os.environ.get(k) == v for k, v in wanted.items()):
        return
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **wanted})


def _extract(ref: str, into: Path) -> str:
    """``featurestore`` of git revision ``ref`` as package ``featurestore_<sha>`` in ``into``
    (the package imports itself relatively, so another name is all it takes)."""
    sha = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    name = f"featurestore_{sha}"
    archive = subprocess.run(["git", "archive", ref, "featurestore"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "featurestore").rename(into / name)
    return name


class Timed:
    """One version of the code with its functions wrapped to charge CPU time to stages."""

    def __init__(self, package: str, label: str, repo_text: str | None = None):
        self.label = label
        self.ingest = importlib.import_module(f"{package}.sources.weblog.ingest")
        self.parse = importlib.import_module(f"{package}.sources.weblog.parse")
        self.scan = importlib.import_module(f"{package}.sources.weblog.scan")
        self.drops = importlib.import_module(f"{package}.sources.weblog.drops")
        self.storage = importlib.import_module(f"{package}.storage")
        partials = importlib.import_module(f"{package}.features.partials")
        daily = importlib.import_module(f"{package}.features.daily")
        self.declared, self.ext = None, None
        if repo_text is None:
            empty = tempfile.mkdtemp(prefix="stages-empty-")  # no recorded repo: built-in
            try:
                self.daily = daily.daily_plan(partials.repo_for_ingest(
                    self.storage.Store(empty), None))
            finally:
                shutil.rmtree(empty, ignore_errors=True)
        else:  # as ingest._run_tasks derives them from the store's recorded repository
            definitions = importlib.import_module(f"{package}.features.definitions")
            engine = importlib.import_module(f"{package}.features.aggs.engine")
            repo = definitions.parse_feature_repo(repo_text, "--repo")
            self.daily = daily.daily_plan(repo)
            self.declared = repo.declared_columns() or None
            ext = engine.ext_plan(repo)
            self.ext = ext if ext is not None and ext.specs else None
            engine.partial_of = self._wrap("ext build", engine.partial_of)
            engine.write_ipc = self._wrap("ext write", engine.write_ipc)
            self.parse._declared_columns = self._wrap("declared",
                                                      self.parse._declared_columns)
        self.cpu: dict[str, float] = defaultdict(float)
        self._stack: list[str] = []
        self.scan.warm_up()  # the kernels loaded (or compiled) before any file is timed
        for module in ("hit_lists", "strings", "aggs.partial_kernels", "aggs.runs"):
            with contextlib.suppress(ModuleNotFoundError):  # (older revisions lack some)
                importlib.import_module(f"{package}.features.{module}").warm_up()
        ing, parse, scan = self.ingest, self.parse, self.scan
        ing.write_partials = self._wrap("partials", ing.write_partials)
        ing.write_events_file = self._wrap("events write", ing.write_events_file)
        ing.conform = self._wrap("conform", ing.conform)
        ing.parse_file = self._wrap("parse (rest)", ing.parse_file)
        parse.hashlib = _Hashlib(self)
        ing.hashlib = parse.hashlib
        scan.scan_pieces = self._wrap("scan", scan.scan_pieces)
        parse._one_member_pieces = self._wrap_gen("decompress", parse._one_member_pieces)
        ing.fsspec = _Fsspec(self, ing.fsspec)
        write_arrow = self.storage.Store.write_arrow

        def quarantine_or_events(store, table, *parts, **kwargs):
            stage = "quarantine" if parts and parts[0] == ing.QUARANTINE else None
            if stage is None:
                return write_arrow(store, table, *parts, **kwargs)
            return self._wrap(stage, write_arrow)(store, table, *parts, **kwargs)

        self.storage.Store.write_arrow = quarantine_or_events

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Charge the CPU time inside to ``name`` (nested stages charge their own)."""
        start = time.thread_time()
        self._stack.append(name)
        try:
            yield
        finally:
            self._stack.pop()
            spent = time.thread_time() - start
            self.cpu[name] += spent
            if self._stack:
                self.cpu[self._stack[-1]] -= spent

    def _wrap(self, name: str, fn: Callable) -> Callable:
        def wrapped(*args, **kwargs):
            with self.stage(name):
                return fn(*args, **kwargs)
        return wrapped

    def _wrap_gen(self, name: str, fn: Callable) -> Callable:
        def wrapped(*args, **kwargs):
            it = fn(*args, **kwargs)
            while True:
                with self.stage(name):
                    try:
                        piece = next(it)
                    except StopIteration:
                        return
                yield piece
        return wrapped

    def run(self, store_root: Path, raw) -> dict:
        """One file through the task; returns its result (the ledger record)."""
        store = self.storage.Store(str(store_root))
        with self.stage("task (rest)"):
            if self.ext is None and self.declared is None:
                return self.ingest._ingest_one(store, raw, {}, None, None, 30, self.daily)
            return self.ingest._ingest_one(store, raw, {}, None, None, 30, self.daily,
                                           self.declared, self.ext)


class _Hashlib:
    """``hashlib`` whose md5 is charged to the md5 stage."""

    def __init__(self, timed: Timed):
        import hashlib

        self._timed, self._hashlib = timed, hashlib

    def md5(self, data: bytes = b""):
        with self._timed.stage("md5"):
            digest = self._hashlib.md5(data)
            digest.hexdigest()
        return digest

    def __getattr__(self, name):
        return getattr(self._hashlib, name)


class _Fsspec:
    """``fsspec`` whose file reads are charged to the read stage."""

    def __init__(self, timed: Timed, fsspec: ModuleType):
        self._timed, self._fsspec = timed, fsspec

    def open(self, *args, **kwargs):
        outer = self._fsspec.open(*args, **kwargs)
        timed = self._timed

        class _Opened:
            def __enter__(self):
                f = outer.__enter__()
                read = f.read

                def timed_read(*a):
                    with timed.stage("read"):
                        return read(*a)
                f.read = timed_read
                return f

            def __exit__(self, *exc):
                return outer.__exit__(*exc)
        return _Opened()

    def __getattr__(self, name):
        return getattr(self._fsspec, name)


def _tables(store: Path) -> dict[str, object]:
    """Every parquet/IPC table and ledger record a store holds, by relative path."""
    import pyarrow.parquet as pq
    from pyarrow import feather

    out: dict[str, object] = {}
    for path in sorted(store.rglob("*")):
        rel = str(path.relative_to(store))
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix == ".parquet":
            out[rel] = pq.read_table(path)
        elif path.suffix == ".arrow":
            out[rel] = feather.read_table(path)
        elif path.suffix == ".json" and "_ledger" in rel:
            record = json.loads(path.read_text())
            record.pop("ingested_at", None)
            out[rel] = record
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raw", required=True, help="the raw root holding the drop folder")
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--before", help="git revision to compare with (interleaved)")
    ap.add_argument("--check", action="store_true", help="compare what both versions wrote")
    ap.add_argument("--plain-env", action="store_true",
                    help="keep this process's environment (default: the workers' malloc and "
                         "Arrow allocator settings)")
    ap.add_argument("--repo", help="a repository YAML whose declared columns and SPEC §3a "
                                   "partials the task builds (default: the built-in one)")
    args = ap.parse_args()
    if not args.plain_env:
        _as_worker()

    scratch = Path(tempfile.mkdtemp(prefix="ingest-stages-"))
    repo_text = Path(args.repo).read_text() if args.repo else None
    versions = [Timed("featurestore", "this checkout", repo_text)]
    if args.before:
        sys.path.insert(0, str(scratch))
        versions.insert(0, Timed(_extract(args.before, scratch), args.before, repo_text))
    found = versions[-1].drops.discover_drops(args.raw)
    files = found.files[:args.files]
    per_file: dict[str, dict[str, list[float]]] = {v.label: defaultdict(list) for v in versions}
    results: dict[str, list[dict]] = {v.label: [] for v in versions}
    try:
        for round_ in range(args.rounds):
            for raw in files:
                for v in (versions if round_ % 2 == 0 else versions[::-1]):
                    raw_v = v.drops.RawFile(raw.url, raw.drop_date, raw.name, raw.size,
                                            raw.columns, raw.manifest, raw.stamp)
                    v.cpu.clear()
                    result = v.run(scratch / f"store-{versions.index(v)}", raw_v)
                    assert result["status"] == "ingested", result
                    for stage in STAGES:
                        per_file[v.label][stage].append(v.cpu.get(stage, 0.0))
                    if round_ == 0:
                        results[v.label].append(result)
        lines = sum(r["lines"] for r in results[versions[-1].label])
        print(f"{len(files)} files ({lines:,} lines), {args.rounds} rounds; CPU ms per file "
              "(median of files x rounds, time.thread_time); "
              + ("this process's environment" if args.plain_env else
                 "the workers' environment (" + " ".join(
                     f"{k}={v}" for k, v in _worker_environ().items()) + ")"))
        print(f"{'stage':14}" + "".join(f"{v.label[:22]:>24}" for v in versions))
        totals = {v.label: 0.0 for v in versions}
        for stage in STAGES:
            cells = []
            for v in versions:
                ms = statistics.median(per_file[v.label][stage]) * 1000
                totals[v.label] += ms
                cells.append(f"{ms:24.1f}")
            print(f"{stage:14}" + "".join(cells))
        print(f"{'total':14}" + "".join(f"{totals[v.label]:24.1f}" for v in versions))
        if args.check and len(versions) == 2:
            a, b = (_tables(scratch / f"store-{i}") for i in range(2))
            assert sorted(a) == sorted(b), (sorted(set(a) ^ set(b)))
            differ = [k for k in a if not (a[k] == b[k] if isinstance(a[k], dict)
                                           else a[k].equals(b[k], check_metadata=True))]
            print(f"check: {len(a)} outputs compared (events, partials, quarantine, ledger "
                  f"records), {len(differ)} differ {differ[:5]}")
            if differ:
                sys.exit(1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
