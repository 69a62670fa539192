"""The on-disk hand-over between feature building and training.

A feature directory holds `interactions.parquet` (one row per user–video pair: `user_index`,
`video_index`, `confidence`, `events`, `last_timestamp`), `user_ids.json` and `video_ids.json`
(position = index), and `report.json` (what was read, dropped and kept, and the confidence settings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

INTERACTIONS_FILE = "interactions.parquet"
USER_IDS_FILE = "user_ids.json"
VIDEO_IDS_FILE = "video_ids.json"
REPORT_FILE = "report.json"


@dataclass
class FeatureSet:
    interactions: pd.DataFrame
    user_ids: list[str]
    video_ids: list[str]
    report: dict

    def save(self, directory: Path | str) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.interactions.to_parquet(directory / INTERACTIONS_FILE, index=False)
        (directory / USER_IDS_FILE).write_text(json.dumps(self.user_ids))
        (directory / VIDEO_IDS_FILE).write_text(json.dumps(self.video_ids))
        (directory / REPORT_FILE).write_text(json.dumps(self.report, indent=2))
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> FeatureSet:
        directory = Path(directory)
        for name in (INTERACTIONS_FILE, USER_IDS_FILE, VIDEO_IDS_FILE, REPORT_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(
                    f"{directory / name}: missing; build it with `python -m features.build_features`"
                )
        return cls(
            interactions=pd.read_parquet(directory / INTERACTIONS_FILE),
            user_ids=json.loads((directory / USER_IDS_FILE).read_text()),
            video_ids=json.loads((directory / VIDEO_IDS_FILE).read_text()),
            report=json.loads((directory / REPORT_FILE).read_text()),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.user_ids), len(self.video_ids)

    def to_csr(self, rows: np.ndarray | None = None) -> csr_matrix:
        """Users × videos confidence matrix, optionally from a boolean mask over interaction rows.

        A `csr_matrix` (not `csr_array`): implicit's `recommend` accepts only the former.
        """
        frame = self.interactions if rows is None else self.interactions[rows]
        return csr_matrix(
            (
                frame["confidence"].to_numpy(np.float32),
                (frame["user_index"].to_numpy(), frame["video_index"].to_numpy()),
            ),
            shape=self.shape,
        )
