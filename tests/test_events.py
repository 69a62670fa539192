from pathlib import Path

import pandas as pd
import pytest

from features.build_features import build_features_from_file
from features.columns import DataFileError
from features.events import read_events, read_movielens

HEADER = "user_id,video_id,timestamp,event,watch_seconds,video_duration\n"


def write(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(header + body)
    return path


def test_missing_required_column_is_named(tmp_path):
    path = write(tmp_path, "u1,v1\n", header="user_id,video_id\n")
    with pytest.raises(DataFileError, match=r"events\.csv: missing required column\(s\) 'timestamp'"):
        read_events(path)


def test_non_numeric_duration_names_row_and_column(tmp_path):
    path = write(tmp_path, "u1,v1,100,view,10,60\nu2,v1,101,view,5,abc\n")
    with pytest.raises(DataFileError, match=r"events\.csv, row 2, column 'video_duration': 'abc' is not a number"):
        read_events(path)


def test_unparseable_timestamp_names_row_and_column(tmp_path):
    path = write(tmp_path, "u1,v1,2025-01-01T00:00:00Z,view,,\nu2,v1,yesterday,view,,\n")
    with pytest.raises(DataFileError, match=r"row 2, column 'timestamp': unparseable timestamp 'yesterday'"):
        read_events(path)


def test_empty_id_names_row_and_column(tmp_path):
    path = write(tmp_path, "u1,v1,100,view,,\nu2,,101,view,,\n")
    with pytest.raises(DataFileError, match=r"row 2, column 'video_id': empty id"):
        read_events(path)


def test_negative_watch_seconds_is_rejected(tmp_path):
    path = write(tmp_path, "u1,v1,100,view,-3,60\n")
    with pytest.raises(DataFileError, match=r"row 1, column 'watch_seconds': negative value"):
        read_events(path)


def test_unknown_event_names_row_and_column(tmp_path):
    path = write(tmp_path, "u1,v1,100,view,,\nu1,v2,101,dislike,,\n")
    with pytest.raises(DataFileError, match=r"row 2, column 'event': unknown event 'dislike'; known events: "):
        build_features_from_file(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataFileError, match=r"nope\.csv: file not found"):
        read_events(tmp_path / "nope.csv")


def test_iso_timestamps_become_epoch_seconds(tmp_path):
    path = write(tmp_path, "u1,v1,2025-01-01T00:00:10Z,view,,\nu1,v2,2025-01-01 00:00:20,like,,\n")
    assert read_events(path)["timestamp"].tolist() == [1735689610, 1735689620]


def test_empty_optional_numbers_stay_missing(tmp_path):
    events = read_events(write(tmp_path, "u1,v1,100,view,,\nu1,v2,101,view,30,60\n"))
    assert events["watch_seconds"].isna().tolist() == [True, False]


def test_a_recommendation_id_column_is_read_as_text_and_may_be_empty(tmp_path):
    header = "user_id,video_id,timestamp,recommendation_id\n"
    events = read_events(write(tmp_path, "u1,v1,100,1234567890123456789e0000\nu1,v2,101,\n", header=header))
    assert events["recommendation_id"].tolist() == ["1234567890123456789e0000", None]


def test_training_features_ignore_the_recommendation_id(tmp_path):
    rows = "".join(f"u{n % 7},v{n % 5},{100 + n},{'ab' * 12 if n % 2 else ''}\n" for n in range(60))
    with_ids = build_features_from_file(write(tmp_path, rows, header="user_id,video_id,timestamp,recommendation_id\n"))
    (tmp_path / "plain").mkdir()
    plain_rows = "".join(line.rsplit(",", 1)[0] + "\n" for line in rows.splitlines())
    plain = build_features_from_file(write(tmp_path / "plain", plain_rows, header="user_id,video_id,timestamp\n"))
    pd.testing.assert_frame_equal(with_ids.interactions, plain.interactions)


def test_parquet_input_reads_like_csv(tmp_path):
    csv_events = read_events(write(tmp_path, "u1,v1,100,view,10,60\nu2,v3,101,like,5,50\n"))
    parquet_path = tmp_path / "events.parquet"
    csv_events.to_parquet(parquet_path)
    pd.testing.assert_frame_equal(read_events(parquet_path), csv_events)


def test_movielens_adapter_reads_tab_separated_ratings(tmp_path):
    path = tmp_path / "u.data"
    path.write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    events = read_movielens(path)
    assert events["user_id"].tolist() == ["196", "186"]
    assert events["video_id"].tolist() == ["242", "302"]
    assert events["rating"].tolist() == [3.0, 3.0]
    assert events["event"].tolist() == ["rating", "rating"]


def test_bad_timestamp_among_epoch_seconds_names_its_own_row(tmp_path):
    path = write(tmp_path, "u1,v1,100,view,,\nu2,v1,2025-01-01T00:00:00Z,view,,\nu3,v1,later,view,,\n")
    with pytest.raises(DataFileError, match=r"row 3, column 'timestamp': unparseable timestamp 'later'"):
        read_events(path)


def test_epoch_and_iso_timestamps_may_mix(tmp_path):
    path = write(tmp_path, "u1,v1,100,view,,\nu2,v1,2025-01-01T00:00:00Z,view,,\n")
    assert read_events(path)["timestamp"].tolist() == [100, 1735689600]


def test_negative_video_duration_names_row_and_column(tmp_path):
    path = write(tmp_path, "u1,v1,100,view,10,60\nu1,v2,101,view,10,-60\n")
    with pytest.raises(DataFileError, match=r"row 2, column 'video_duration': negative value"):
        read_events(path)


def test_watch_time_without_a_duration_names_row_and_column(tmp_path):
    path = write(tmp_path, "u1,v1,100,like,,\nu1,v2,101,view,30,\n")
    with pytest.raises(DataFileError, match=r"row 2, column 'video_duration': missing where watch_seconds is given"):
        read_events(path)


def test_watch_time_with_a_zero_duration_is_refused(tmp_path):
    path = write(tmp_path, "u1,v1,100,view,30,0\n")
    with pytest.raises(DataFileError, match=r"row 1, column 'video_duration': must be positive"):
        read_events(path)


def test_watch_time_without_a_duration_column_is_refused(tmp_path):
    path = write(tmp_path, "u1,v1,100,view,30\n", header="user_id,video_id,timestamp,event,watch_seconds\n")
    with pytest.raises(DataFileError, match=r"column 'watch_seconds' needs a 'video_duration' column"):
        read_events(path)
