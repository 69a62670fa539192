"""The drift report reads captured traffic as the server reads it: its decoder, its parser, its wire types."""

from __future__ import annotations

import base64
import json

import pytest

from monitoring.capture import CaptureError
from monitoring.drift import compare, read_capture
from serving.codecs import JSONLINES_ALIASES
from vrmodels.model.queries import DEFAULT_K


def record(request: tuple[str, str], answer: tuple[str, str], base64_request: bool = False) -> str:
    def side(content_type: str, data: str, encode: bool) -> dict:
        text = base64.b64encode(data.encode()).decode() if encode else data
        return {
            "observedContentType": content_type,
            "mode": "INPUT",
            "data": text,
            "encoding": "BASE64" if encode else "JSON",
        }

    return json.dumps(
        {"captureData": {"endpointInput": side(*request, base64_request), "endpointOutput": side(*answer, False)}}
    )


ANSWER = json.dumps({"userId": "u001", "recommendations": [{"videoId": "v005", "score": 0.5}]})


@pytest.mark.parametrize("content_type", sorted(JSONLINES_ALIASES))
def test_every_json_lines_media_type_the_server_accepts_is_read(tmp_path, content_type):
    lines = '{"user_id": "u001", "k": 3}\n{"user_id": "u002", "history": ["v005", "v006"]}\n'
    (tmp_path / "capture.jsonl").write_text(record((content_type, lines), (content_type, ANSWER + "\n" + ANSWER)))
    traffic = read_capture(str(tmp_path))
    assert traffic.users == ["u001", "u002"] and traffic.ks == [3, DEFAULT_K]
    assert traffic.history_lengths == [0, 2] and traffic.answers == 2 and traffic.unreadable_payloads == 0


def test_bodies_the_server_would_refuse_are_counted_not_fatal(tmp_path):
    records = [
        record(("text/csv", "u001,3"), ("application/json", '{"error": {"status": 415, "message": "..."}}'), True),
        record(("application/json", '{"user_id": '), ("application/json", '{"error": {"status": 400}}')),
        record(("application/jsonlines", '{"user_id": "u003"}\n{not json\n'), ("application/jsonlines", ANSWER)),
    ]
    (tmp_path / "capture.jsonl").write_text("\n".join(records) + "\n")
    traffic = read_capture(str(tmp_path))
    assert traffic.invocations == 3 and traffic.unreadable_payloads == 3
    assert traffic.users == ["u003"] and traffic.answers == 1


def test_a_line_that_is_not_a_capture_record_is_counted_naming_file_and_line_and_the_rest_is_read(tmp_path):
    good = record(("application/json", '{"user_id": "u001"}'), ("application/json", ANSWER))
    (tmp_path / "part.jsonl").write_text(good + "\n{}\nnot json\n" + good + "\n")
    traffic = read_capture(str(tmp_path))
    assert traffic.invocations == 2 and traffic.users == ["u001", "u001"]
    assert traffic.tally.bad_records == 2 and traffic.tally.records == 4
    assert "part.jsonl, line 2: not a SageMaker data capture record" in traffic.tally.samples[0]
    assert "part.jsonl, line 3" in traffic.tally.samples[1]


def test_a_captured_request_with_a_bad_field_is_counted_as_the_server_would_refuse_it(tmp_path):
    bad = record(("application/json", '{"k": "x"}'), ("application/json", '{"error": {"status": 422, "message": "k"}}'))
    good = record(("application/json", '{"user_id": "u002", "k": 4}'), ("application/json", ANSWER))
    (tmp_path / "capture.jsonl").write_text(bad + "\n" + good + "\n")
    traffic = read_capture(str(tmp_path))
    assert traffic.invocations == 2 and traffic.unreadable_payloads == 1
    assert traffic.users == ["u002"] and traffic.ks == [4]
    assert "k: Input should be a valid integer" in traffic.tally.samples[0]


def test_nothing_readable_is_an_error_naming_the_place(tmp_path):
    (tmp_path / "part.jsonl").write_text("{}\n")
    with pytest.raises(CaptureError, match=r"no readable capture records \(1 bad: .*part\.jsonl, line 1"):
        read_capture(str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CaptureError, match="empty: no capture files"):
        read_capture(str(tmp_path / "empty"))
    with pytest.raises(CaptureError, match="nowhere: not found"):
        read_capture(str(tmp_path / "nowhere"))


def test_the_report_counts_unreadable_payloads_beside_the_rates(tmp_path, model_dir):
    (tmp_path / "capture.jsonl").write_text(
        record(("application/x-ndjson", '{"user_id": "u001"}\n{"user_id": "stranger"}'), ("text/plain", "?")) + "\n"
    )
    report = compare(read_capture(str(tmp_path)), model_dir)
    assert report["unreadable_payloads"] == 1 and report["rates"]["unknown_user_rate"] == 0.5
