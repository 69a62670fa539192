"""Reading the server's answers in tests: each list carries its own random recommendation id."""

from __future__ import annotations

import re

RECOMMENDATION_ID = re.compile(r"[0-9a-f]{24}")


def without_id(answer: dict) -> dict:
    """An answer (or a batch's, each of its predictions) without its recommendation id, to compare content."""
    if "predictions" in answer:
        return {"predictions": [without_id(prediction) for prediction in answer["predictions"]]}
    return {name: value for name, value in answer.items() if name != "recommendationId"}
