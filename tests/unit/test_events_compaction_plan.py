"""The events compaction planner (issue #14 item 2): pure functions, no store, no cluster."""

from __future__ import annotations

from featurestore.events_compaction import (
    loose_id,
    output_name,
    plan_merges,
    plan_rewrites,
    resolve_day,
)

DAY = "2026-01-02"
IDS = ["2026-01-02-hit_data-0001", "2026-01-02-hit_data-0000", "2026-01-03-hit_data-0000"]


def _part(fid: str) -> str:
    return f"part-{fid}.parquet"


def _record(output: str, ids: list[str], rows: list[int], replaces: str | None = None) -> dict:
    inputs, start = [], 0
    for fid, n in zip(ids, rows, strict=True):
        inputs.append({"file_id": fid, "rows": [start, start + n]})
        start += n
    return {"output": output, "inputs": inputs, "replaces": replaces}


def test_output_name_is_deterministic_and_order_free():
    name = output_name(IDS)
    assert name == output_name(list(reversed(IDS)))
    assert name.startswith("part-c") and name.endswith(".parquet")
    assert name != output_name(IDS[:2])
    assert loose_id(name) is None and loose_id(_part(IDS[0])) == IDS[0]
    assert loose_id(".tmp-x-part-1.parquet") is None


def test_merges_every_committed_part_of_the_date_in_id_order():
    loose = dict.fromkeys(IDS, 1000)
    merges = plan_merges(DAY, loose, set(IDS), target_bytes=10_000)
    assert len(merges) == 1
    assert merges[0].file_ids == tuple(sorted(IDS))
    assert merges[0].output == output_name(IDS)
    assert merges[0].parts == tuple(_part(f) for f in sorted(IDS))
    # the same inputs listed in another order plan the same merge (resumed == clean)
    assert plan_merges(DAY, dict(reversed(list(loose.items()))), set(IDS), 10_000) == merges


def test_uncommitted_parts_are_never_merged_and_one_part_stays_as_is():
    loose = dict.fromkeys(IDS, 1000)
    merges = plan_merges(DAY, loose, set(IDS[:2]), target_bytes=10_000)
    assert [m.file_ids for m in merges] == [tuple(sorted(IDS[:2]))]
    assert plan_merges(DAY, {IDS[0]: 10}, {IDS[0]}, 10_000) == []
    assert plan_merges(DAY, loose, set(), 10_000) == []


def test_split_above_target_size():
    ids = [f"2026-01-02-hit_data-{i:04d}" for i in range(7)]
    loose = dict.fromkeys(ids, 400)
    merges = plan_merges(DAY, loose, set(ids), target_bytes=1000)
    assert [len(m.file_ids) for m in merges] == [2, 2, 2]  # the last part alone stays loose
    assert all(sum(loose[f] for f in m.file_ids) <= 1000 for m in merges)
    assert [f for m in merges for f in m.file_ids] == sorted(ids)[:6]
    assert len({m.output for m in merges}) == 3
    big = {ids[0]: 5000, ids[1]: 10, ids[2]: 10}  # a part above the target is its own group
    assert [m.file_ids for m in plan_merges(DAY, big, set(ids), 1000)] == [tuple(ids[1:3])]


def test_live_view_hides_inputs_orphans_and_superseded_outputs():
    merged = output_name(IDS[:2])
    record = _record(merged, sorted(IDS[:2]), [5, 7])
    # crash after the output, before the record: an orphan; the parts are live
    view = resolve_day(DAY, [merged, *map(_part, IDS)], [])
    assert view.orphans == [merged] and view.files == sorted(map(_part, IDS))
    # crash mid deletes: the output is live, its remaining inputs are leftovers
    view = resolve_day(DAY, [merged, _part(IDS[1]), _part(IDS[2]), ".tmp-1-x.parquet"], [record])
    assert view.files == sorted([merged, _part(IDS[2])])
    assert view.leftovers == [_part(IDS[1])]
    assert view.file_ids[merged] == sorted(IDS[:2]) and view.holder(IDS[0]) == merged
    # a rewrite committed, the old output not yet deleted: superseded
    kept = output_name([sorted(IDS[:2])[1]])
    rewrite = _record(kept, [sorted(IDS[:2])[1]], [7], replaces=merged)
    view = resolve_day(DAY, [merged, kept], [record, rewrite])
    assert view.files == [kept] and view.superseded == [merged]
    # the old output deleted, its record not yet: stale
    view = resolve_day(DAY, [kept], [record, rewrite])
    assert view.files == [kept] and view.stale_records == [merged] and not view.superseded
    assert resolve_day(DAY, [kept], [rewrite]).clean


def test_rewrite_keeps_the_other_inputs_row_ranges():
    merged = output_name(IDS)
    ids = sorted(IDS)
    view = resolve_day(DAY, [merged], [_record(merged, ids, [5, 7, 3])])
    (rw,) = plan_rewrites(view, {ids[1]})
    assert rw.source == merged and rw.removed == (ids[1],)
    assert rw.keep == ((ids[0], 0, 5), (ids[2], 12, 15))
    assert rw.output == output_name([ids[0], ids[2]])
    (gone,) = plan_rewrites(resolve_day(DAY, [merged], [_record(merged, ids, [1, 1, 1])]),
                            set(ids))
    assert gone.output is None
    assert plan_rewrites(view, {"2026-01-09-other"}) == []
