"""What each query of a request ends as: answered, or a ServingError in its own slot. Typed from parse to encode."""

from __future__ import annotations

from dataclasses import dataclass

from serving.errors import ServingError
from vrmodels.model.queries import AnyQuery, Recommendations


@dataclass(frozen=True, slots=True)
class Answered:
    query: AnyQuery
    recommendations: Recommendations


Outcome = Answered | ServingError
"""One per query, in request order."""
Parsed = AnyQuery | ServingError
"""A request line or instance after parsing: a query, or the error that says why it is not one."""
