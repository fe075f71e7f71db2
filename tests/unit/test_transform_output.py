"""The Batch Transform output check of ``featurestore predict`` (issue #17 item 1): a score is
written only when the job's ``customer_id,score`` output covers exactly its input."""

from __future__ import annotations

import numpy as np
import pytest

from featurestore._exceptions import TrainingError
from featurestore.predict import _parse_transform_output

IDS = np.array(["C2", "C1", "C3"], dtype=object)


def test_output_in_any_order_is_read_with_its_ids():
    ids, scores = _parse_transform_output(b"C1,0.25\nC3,0.5\nC2,0.125\n", IDS, "out")
    assert dict(zip(ids, scores)) == {"C1": 0.25, "C3": 0.5, "C2": 0.125}
    assert scores.dtype == np.float64


@pytest.mark.parametrize("body", [b"C1,0.25\nC3,0.5\n",           # a row missing
                                  b"C1,0.25\nC3,0.5\nC9,0.1\n",  # a stranger
                                  b"C1,0.25\nC3,0.5\nC2,\n",     # no score
                                  b"C1,0.25\nC3,0.5\nC2,0.1\nC2,0.1\n"])  # a duplicate
def test_incomplete_output_is_refused_naming_it(body):
    with pytest.raises(TrainingError, match=r"s3://b/o/part-00000.csv.out holds"):
        _parse_transform_output(body, IDS, "s3://b/o/part-00000.csv.out")


def test_an_empty_part_is_empty():
    ids, scores = _parse_transform_output(b"", np.array([], dtype=object), "out")
    assert len(ids) == len(scores) == 0
