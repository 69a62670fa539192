"""The id ↔ index maps workers share: exact lookups, strict checks, any Unicode id."""

from __future__ import annotations

import numpy as np
import pytest

from vrmodels.model.ids import IdIndex, IdIndexError

IDS = ["v10", "v2", "vidéo-ü", "用户-7", "🎬", "a" * 40, "v1"]


@pytest.fixture
def index() -> IdIndex:
    return IdIndex.build(IDS)


def test_every_id_finds_its_index_and_back(index):
    assert [index.index_of(identifier) for identifier in IDS] == list(range(len(IDS)))
    assert index.ids_of(np.arange(len(IDS))) == IDS
    assert index.all_ids() == IDS


@pytest.mark.parametrize("unknown", ["v3", "", "v1 ", "V1", "a" * 41, "vidéo", "x\x00"])
def test_unknown_ids_are_none(index, unknown):
    assert index.index_of(unknown) is None


def test_many_ids_at_once_return_sorted_known_indices_and_unknown_ids_in_order(index):
    known, unknown = index.indices_of(["🎬", "nope", "v10", "🎬", "also-nope"])
    assert known.tolist() == [0, 4] and unknown == ["nope", "also-nope"]


def test_many_ids_agree_with_one_at_a_time_lookups_including_ids_no_index_can_hold(index):
    # "a" * 41 and "🎬\x00" would match a known id if cut to the index's width or stripped of the NUL.
    asked = ["", "a\x00b", "x" * 500, "a" * 41, "🎬\x00", "v10", "v1", "v10 ", "🎬🎬", *IDS]
    known, unknown = index.indices_of(asked)
    one_at_a_time = [index.index_of(identifier) for identifier in asked]
    assert known.tolist() == sorted({i for i in one_at_a_time if i is not None})
    assert unknown == [identifier for identifier, i in zip(asked, one_at_a_time) if i is None]
    nothing, none_unknown = index.indices_of([])
    assert len(nothing) == 0 and none_unknown == []
    assert index.positions_of(asked).tolist() == [-1 if i is None else i for i in one_at_a_time]  # in order
    assert index.positions_of([]).tolist() == [] and IdIndex.build([]).positions_of(["v1"]).tolist() == [-1]


def test_duplicate_ids_are_refused():
    with pytest.raises(IdIndexError, match="ids out of order or duplicated near 'v2'"):
        IdIndex.build(["v1", "v2", "v3", "v2"])


def test_nul_characters_are_refused():
    with pytest.raises(IdIndexError, match="NUL character"):
        IdIndex.build(["ok", "bad\x00id"])


def test_saved_indexes_load_memory_mapped(tmp_path, index):
    index.save(tmp_path, "video_ids")
    loaded = IdIndex.load(tmp_path, "video_ids")
    assert isinstance(np.load(tmp_path / "video_ids.npy", mmap_mode="r"), np.memmap)
    assert [loaded.index_of(identifier) for identifier in IDS] == list(range(len(IDS)))


def test_an_order_that_does_not_sort_the_ids_is_refused_naming_the_file(tmp_path, index):
    index.save(tmp_path, "video_ids")
    order = np.load(tmp_path / "video_ids_order.npy")
    np.save(tmp_path / "video_ids_order.npy", order[::-1].copy())
    with pytest.raises(IdIndexError, match=r"video_ids\.npy: ids out of order or duplicated"):
        IdIndex.load(tmp_path, "video_ids")


def test_an_order_that_is_not_a_permutation_is_refused(tmp_path, index):
    index.save(tmp_path, "video_ids")
    np.save(tmp_path / "video_ids_order.npy", np.zeros(len(IDS), dtype=np.int64))
    with pytest.raises(IdIndexError, match="not a permutation of 7 ids"):
        IdIndex.load(tmp_path, "video_ids")
