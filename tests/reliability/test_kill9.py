"""Issue #13 item 6: kill -9 at a random moment of ingest, backfill and training-set, then the
very next run proceeds with no manual step and the tables equal a clean run's.

The harness is ``benchmarks/reliability.py`` (``--trials N`` for long runs); here one seeded
trial per step keeps the test within a couple of minutes. The clean reference and the killed
runs are real CLI processes with their own cluster; the run after each kill is the CLI's
``main`` in the test process on the session cluster
(:func:`tests.reliability._clean_ingest.rerun_in_process`: no interpreter and cluster start).
"""

from __future__ import annotations

import random

import pandas as pd
import pytest

from benchmarks.reliability import STEPS, Harness
from tests.reliability._clean_ingest import rerun_in_process


@pytest.fixture(scope="module")
def harness(tmp_path_factory, client):
    return Harness(tmp_path_factory.mktemp("kill9"),
                   rerun=rerun_in_process(client.scheduler.address))


@pytest.mark.parametrize("step", STEPS)
def test_kill9_then_next_run_equals_clean_run(harness, step):
    fraction = random.Random(f"kill9-{step}").uniform(0.3, 0.8)
    result = harness.trial(step, fraction, f"trial-{step}")
    assert result["next_rc"] == 0, result["next_error"]
    assert result["rows_lost"] == 0 and result["rows_duplicated"] == 0, result
    if not result["killed"]:
        pytest.skip(f"the machine was fast: {step} ended before {result['kill_after']} s")


def test_harness_counts_lost_and_duplicated_rows():
    """The comparison can fail: drop one row of a table and repeat two others."""
    from benchmarks.reliability import _as_text, compare

    events = _as_text(pd.DataFrame({"id": [1, 2, 3, 4], "raw": [b"a", b"\xff", b"c", b"d"]}))
    clean = {"events": events, "quarantine": events}
    broken = {"events": pd.concat([events.iloc[1:], events.iloc[1:3]])}
    assert compare(clean, broken) == {"rows_lost": 1 + 4, "rows_duplicated": 2}
