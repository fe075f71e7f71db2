"""The suite's file order (tests/conftest.py): the slow-files list names real test files, and
the collection hook puts them first, longest first, without reordering a file's tests."""

from __future__ import annotations

from types import SimpleNamespace

from tests.conftest import ROOT_DIR, SLOW_FILES_FIRST, pytest_collection_modifyitems


def test_every_listed_slow_file_exists_once():
    assert len(set(SLOW_FILES_FIRST)) == len(SLOW_FILES_FIRST)
    missing = [f for f in SLOW_FILES_FIRST if not (ROOT_DIR / f).is_file()]
    assert missing == [], "rename or drop these in SLOW_FILES_FIRST"


def test_listed_files_first_then_most_tests_first_and_a_files_order_kept():
    slow_a, slow_b = SLOW_FILES_FIRST[1], SLOW_FILES_FIRST[0]
    ids = ["tests/unit/x.py::t1", f"{slow_a}::a1", "tests/unit/y.py::u1", f"{slow_b}::b1",
           "tests/unit/y.py::u2", f"{slow_a}::a2", "tests/unit/x.py::t2",
           "tests/unit/y.py::u3"]
    items = [SimpleNamespace(nodeid=i) for i in ids]
    pytest_collection_modifyitems(None, items)
    assert [i.nodeid for i in items] == [
        f"{slow_b}::b1", f"{slow_a}::a1", f"{slow_a}::a2",
        "tests/unit/y.py::u1", "tests/unit/y.py::u2", "tests/unit/y.py::u3",
        "tests/unit/x.py::t1", "tests/unit/x.py::t2"]
