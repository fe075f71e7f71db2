"""The dependency rules of docs/architecture.md, checked on the source (no import needed)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "featurestore"


def _imports(path: Path) -> set[str]:
    """Absolute module names ``path`` imports (relative imports resolved)."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if module.endswith(".__init__"):
        module = module[: -len(".__init__")] + ".__init__"
    package = module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
                out.add(name)
                out |= {f"{name}.{a.name}" for a in node.names}
            else:
                out.add(node.module or "")
    return out


def _modules(folder: Path) -> dict[Path, set[str]]:
    return {p: _imports(p) for p in folder.rglob("*.py")}


def test_the_library_never_imports_the_api():
    offenders = [str(p.relative_to(ROOT)) for p, names in _modules(PACKAGE).items()
                 if any(n == "api" or n.startswith("api.") for n in names)
                 and p.name != "serve.py"]  # `featurestore serve` loads the app by path
    assert offenders == []


def test_the_feature_engine_imports_no_source_and_no_driver_above_it():
    above = ("featurestore.sources", "featurestore.materialization",
             "featurestore.feature_store", "featurestore.repository", "featurestore.retrain",
             "featurestore.training", "featurestore.online")
    offenders = {str(p.relative_to(ROOT)): sorted(n for n in names if n.startswith(above))
                 for p, names in _modules(PACKAGE / "features").items()}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_entry_points_import_the_facade():
    allowed = {"featurestore/__init__.py"}
    offenders = [str(p.relative_to(ROOT)) for p, names in _modules(PACKAGE).items()
                 if "featurestore.feature_store" in names
                 and str(p.relative_to(ROOT)) not in allowed
                 and p.parent.name != "cli" and p.name != "feature_store.py"]
    assert offenders == []


def test_core_modules_import_nothing_above_them():
    core = ["layout.py", "storage.py", "settings.py", "_exceptions.py", "plugins.py",
            "cluster.py", "ledger.py", "generations.py", "schema.py", "planning.py",
            "events_compaction.py"]
    above = ("featurestore.features", "featurestore.sources",
             "featurestore.materialization", "featurestore.feature_store",
             "featurestore.repository", "featurestore.retrain", "featurestore.training",
             "featurestore.online", "featurestore.cli")
    offenders = {name: sorted(n for n in _imports(PACKAGE / name) if n.startswith(above))
                 for name in core}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_api_runs_no_jobs_of_its_own():
    """Job runners (threads, exports, training) live in the library; routes call the facade."""
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "api").rglob("*.py")
                 if "threading.Thread" in p.read_text()]
    assert offenders == []
    names = _imports(ROOT / "api" / "routes" / "training_sets.py")
    assert not {"featurestore.training.build_training_set",
                "featurestore.training.export_xgboost", "threading"} & names


def test_the_planner_is_pure():
    """featurestore/planning.py plans from records alone: no store, no Dask, no pandas."""
    names = _imports(PACKAGE / "planning.py")
    assert not {n for n in names if n.split(".")[0] in ("distributed", "dask", "pandas",
                                                         "fsspec", "pyarrow")}
    assert not {n for n in names if n.startswith("featurestore")}


def test_every_public_name_of_the_lazy_packages_resolves():
    """``featurestore``, ``featurestore.training`` and ``featurestore.retrain`` import their
    names on first use from module paths written as strings: a module that moves must take
    its entries along (``from featurestore import ingest_weblog`` broke when ingestion moved
    into ``sources/weblog/``)."""
    import importlib

    for name in ("featurestore", "featurestore.training", "featurestore.retrain",
                 "featurestore.sources.weblog"):
        package = importlib.import_module(name)
        missing = [n for n in package.__all__ if getattr(package, n, None) is None]
        assert missing == [], f"{name}: {missing}"
