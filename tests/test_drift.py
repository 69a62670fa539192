"""The drift report reads captured traffic as the server reads requests: its media types, its default k."""

from __future__ import annotations

import base64
import json

import pytest

from deploy.drift import CaptureFormatError, compare, read_capture
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


def test_a_line_that_is_not_a_capture_record_is_refused_naming_file_and_line(tmp_path):
    (tmp_path / "part.jsonl").write_text(record(("application/json", "{}"), ("application/json", "{}")) + "\n{}\n")
    with pytest.raises(CaptureFormatError, match=r"part\.jsonl, line 2: not a SageMaker data capture record"):
        read_capture(str(tmp_path))


def test_the_report_counts_unreadable_payloads_beside_the_rates(tmp_path, model_dir):
    (tmp_path / "capture.jsonl").write_text(
        record(("application/x-ndjson", '{"user_id": "u001"}\n{"user_id": "stranger"}'), ("text/plain", "?")) + "\n"
    )
    report = compare(read_capture(str(tmp_path)), model_dir)
    assert report["unreadable_payloads"] == 1 and report["rates"]["unknown_user_rate"] == 0.5
