"""An API process serving from Redis is ready without loading what ``/ready`` does not need
(issue #28: ready in under 2 s at 10 M customers; ``benchmarks/scale.py serve --online-store
redis`` times it): the app is built in a fresh interpreter and the heavy modules it imported
are listed. pandas, scipy, Dask and the model libraries load on the first request that uses
them (dashboard, training sets, retrain, predictions, recommendations)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Modules the app must not import before its first request (0.2-1 s each, tens of MB).
NOT_BEFORE_READY = ("pandas", "scipy", "dask", "distributed", "sklearn", "xgboost", "duckdb",
                    "implicit", "featurestore.dashboard", "featurestore.retrain.jobs",
                    "featurestore.predict", "featurestore.recommend",
                    "featurestore.training.pointintime")

_PROBE = """
import sys
from api.main import create_app
from featurestore.settings import Settings
app = create_app(Settings(store={store!r}, online_store="redis://127.0.0.1:1/0"))
assert app.state.online.in_process is False
print("LOADED=" + ",".join(m for m in {names!r} if m in sys.modules))
"""


def test_the_api_with_redis_builds_without_pandas_scipy_or_the_job_runners(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FEATURESTORE_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(store=str(store),
                                                               names=NOT_BEFORE_READY)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = proc.stdout.rpartition("LOADED=")[2].strip()
    assert loaded == "", f"imported before the first request: {loaded}"


def test_the_lazy_routes_still_import_what_they_use():
    """The stand-ins resolve: the dashboard's numbers and the retrain runner are the real
    modules' functions once used."""
    from api.dashboard import routes as dashboard_routes
    from api.routes import retrain as retrain_routes

    import featurestore.dashboard
    import featurestore.retrain

    assert dashboard_routes.numbers.overview is featurestore.dashboard.overview
    assert retrain_routes.jobs.submit is featurestore.retrain.submit
