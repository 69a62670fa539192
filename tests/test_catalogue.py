"""The video catalogue: read and checked like events (file, row, column), counted against the events, never
refused for videos it lacks or videos nobody watched yet."""

from __future__ import annotations

import pandas as pd
import pytest

from features.build_features import build_features, main
from features.catalogue import read_catalogue, validate_catalogue
from features.columns import DataFileError
from features.events import validate_events
from tests.conftest import SHARED_DATA

HEADER = "video_id,channel_id,category,duration_seconds,published_at,title\n"


def write(tmp_path, body: str, header: str = HEADER, name: str = "videos.csv"):
    path = tmp_path / name
    path.write_text(header + body)
    return path


def test_a_catalogue_reads_epoch_and_iso_times_empty_cells_and_keeps_unknown_columns_aside(tmp_path):
    path = write(tmp_path, "v1,c1,music,240,1700000000,a\nv2,,news,,2023-11-14T22:13:20Z,b\nv3,c1,,60.5,,c\n")
    catalogue = read_catalogue(path)
    assert catalogue["published_at"].tolist()[:2] == [1_700_000_000.0, 1_700_000_000.0]
    assert pd.isna(catalogue["published_at"][2]) and pd.isna(catalogue["duration_seconds"][1])
    assert catalogue["channel_id"].tolist() == ["c1", None, "c1"] and catalogue["category"][2] is None
    assert catalogue.attrs["ignored_columns"] == ["title"]


def test_a_parquet_catalogue_with_only_video_ids_reads(tmp_path):
    pd.DataFrame({"video_id": ["v1", "v2"]}).to_parquet(tmp_path / "videos.parquet")
    catalogue = read_catalogue(tmp_path / "videos.parquet")
    assert catalogue["video_id"].tolist() == ["v1", "v2"] and catalogue["published_at"].isna().all()


@pytest.mark.parametrize(
    ("body", "header", "message"),
    [
        ("v1,c1,music,240,1700000000,a\nv1,c2,news,60,1700000001,b\n", HEADER,
         r"videos\.csv, row 2, column 'video_id': duplicate video_id 'v1'"),
        ("v1,c1,music,240,1700000000,a\nv2,c1,music,-5,1700000000,b\n", HEADER,
         r"videos\.csv, row 2, column 'duration_seconds': negative value"),
        ("v1,c1,music,0,1700000000,a\n", HEADER, r"videos\.csv, row 1, column 'duration_seconds': must be positive"),
        ("v1,c1,music,240,yesterday,a\n", HEADER,
         r"videos\.csv, row 1, column 'published_at': unparseable timestamp 'yesterday'"),
        ("c1,music\n", "channel_id,category\n", r"videos\.csv: missing required column\(s\) 'video_id'"),
        ("v1,c1,music,4 minutes,1700000000,a\n", HEADER,
         r"videos\.csv, row 1, column 'duration_seconds': '4 minutes' is not a number"),
    ],
    ids=["duplicate id", "negative duration", "zero duration", "bad timestamp", "no video_id", "text duration"],
)  # fmt: skip
def test_a_bad_catalogue_is_refused_naming_file_row_and_column(tmp_path, body, header, message):
    with pytest.raises(DataFileError, match=message):
        read_catalogue(write(tmp_path, body, header))


def test_the_cli_refuses_a_bad_catalogue_with_status_2_and_writes_nothing(tmp_path, sample_events, capsys):
    events = tmp_path / "events.csv"
    sample_events.to_csv(events, index=False)
    videos = write(tmp_path, "v001,c1,music,240,1700000000,a\nv001,c1,music,240,1700000000,a\n")
    assert main([str(events), "--videos", str(videos), "--out", str(tmp_path / "features")]) == 2
    assert "duplicate video_id 'v001'" in capsys.readouterr().err
    assert not (tmp_path / "features").exists()


def test_new_uploads_join_the_video_ids_and_watched_videos_missing_from_the_catalogue_are_counted():
    events = validate_events(
        pd.DataFrame({"user_id": ["u1", "u1", "u2"], "video_id": ["v1", "v9", "v1"], "timestamp": [1, 2, 3]}), "e"
    )
    catalogue = validate_catalogue(
        pd.DataFrame({"video_id": ["v1", "v2", "v3"], "channel_id": ["c1", "c1", None], "published_at": [0, 2, 4]}),
        "videos",
    )
    features = build_features(events, videos=catalogue)
    assert features.video_ids == ["v1", "v2", "v3", "v9"]
    counted = features.report["catalogue"]
    assert (counted["videos"], counted["watched"], counted["without_events"]) == (3, 1, 2)
    assert counted["watched_but_not_in_catalogue"] == 1 and features.report["videos"] == 4
    assert features.videos["channel_id"].tolist() == ["c1", "c1", None, None]
    assert features.videos["published_at"].tolist()[:3] == [0.0, 2.0, 4.0]
    pairs = features.interactions[["user_index", "video_index", "first_timestamp"]].to_numpy().tolist()
    assert pairs == [[0, 0, 1], [0, 3, 2], [1, 0, 3]]  # u1 watched v1 then v9; u2 watched v1


@pytest.mark.skipif(not (SHARED_DATA / "ml-100k" / "u.item").exists(), reason="MovieLens-100K is not in ../shared/data")
def test_movielens_items_read_as_a_catalogue_of_genres_and_release_dates():
    catalogue = read_catalogue(SHARED_DATA / "ml-100k" / "u.item", "movielens")
    assert len(catalogue) == 1682 and catalogue["channel_id"].isna().all()
    first = catalogue.iloc[0]
    assert (first["video_id"], first["category"], first["published_at"]) == ("1", "Animation", 788_918_400.0)
    assert catalogue["published_at"].isna().sum() == 1  # u.item's film 267 has no date
