"""The rankings, one per model kind, chosen at load from the manifest's `kind` (vrmodels.model.ranking.base).

A new kind is a module with a `Ranking` subclass and one line below.
"""

from __future__ import annotations

from vrmodels.model.ranking.als import AlsRanking
from vrmodels.model.ranking.base import Ranking
from vrmodels.model.ranking.sequential import SequentialRanking
from vrmodels.model.ranking.twostage import TwoStageRanking

RANKINGS: dict[str, type[Ranking]] = {
    AlsRanking.kind: AlsRanking,
    TwoStageRanking.kind: TwoStageRanking,
    SequentialRanking.kind: SequentialRanking,
}
