"""What the viewer is watching now, judged through HTTP as a nightly model lives (issue 24's targets).

    python -m bench.sessions --against ../base     (today's pipeline: another checkout, e.g. a worktree of main)
    python -m bench.sessions --events FILE --videos FILE --against ../base

Both checkouts build features from the events before a cut (7 days before the log's end) and train with their
defaults; each model is served by its own `serve.py` and asked, over HTTP, what the issue judges:
- home: `{"user_id", "k": 10}` of every user the model knows with a satisfying first watch in the 7 days after
  the cut, judged on those watches;
- in session: `{"user_id", "history": [the first 2 watches of the user's first sitting after the cut, oldest
  first], "k": 10}`, judged on the satisfying watches of the rest of that sitting; the same without the user
  (history only);
- up next: `{"video_id": the last of those 2, "k": 10}`, judged the same way.
Beside them, offline on the same sittings: watched-next alone and factor similarity (from this checkout's model:
its table, its factors). Printed: NDCG@10 of each, and the ratios the targets name.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from bench.common import PROJECT_ROOT, report
from bench.server import Server
from features.build_features import build_features_from_file
from features.sittings import DEFAULT_GAP_MINUTES
from vrmodels.model.recommend import Recommender
from vrmodels.model.threads import limit_blas_threads
from vrmodels.training.evaluation import K, RankedLists, padded_lists
from vrmodels.training.in_session import (
    GIVEN,
    given_filters,
    sitting_queries,
    up_next_lists,
    watched_next_lists,
)
from vrmodels.training.relevance import Relevance

SAMPLE = PROJECT_ROOT / "data" / "sample"
DAY = 24 * 3600
TEST_DAYS = 7


def trained(root: Path, events: Path, videos: Path | None, work: Path) -> Path:
    """Features and a model by `root`'s own commands (its defaults); the model directory."""
    features, models = work / "features", work / "models"
    command = [sys.executable, "-m", "features.build_features", str(events), "--out", str(features)]
    subprocess.run(command + (["--videos", str(videos)] if videos else []), cwd=root, check=True, capture_output=True)
    train = [sys.executable, "-m", "vrmodels.train_model", "--features", str(features), "--models-root", str(models)]
    subprocess.run(train, cwd=root, check=True, capture_output=True)
    return (models / "latest").resolve()


def asked(url: str, bodies: list[dict]) -> list[list[str]]:
    """The video ids each body is answered with, 1000 bodies per request."""
    answers = []
    with httpx.Client(timeout=300) as client:
        for start in range(0, len(bodies), 1000):
            response = client.post(f"{url}/invocations", json={"instances": bodies[start : start + 1000]})
            response.raise_for_status()
            for answer in response.json()["predictions"]:
                items = answer.get("recommendations", answer.get("similar", []))
                answers.append([item["videoId"] for item in items])
    return answers


def ndcg(answers: list[list[str]], targets: csr_matrix, index: dict[str, int]) -> float:
    ids = np.full((len(answers), K), -1, dtype=np.int64)
    for row, answer in enumerate(answers):
        found = [index.get(video, -1) for video in answer[:K]]
        ids[row, : len(found)] = found
    scores = np.where(ids >= 0, 1.0, -3.4e38).astype(np.float32)
    return RankedLists(np.maximum(ids, 0), scores, targets).metrics(K)["ndcg"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", type=Path, required=True, help="today's pipeline: another checkout")
    parser.add_argument("--events", type=Path, default=SAMPLE / "events.csv.gz")
    parser.add_argument("--videos", type=Path, default=SAMPLE / "videos.csv.gz")
    args = parser.parse_args()
    limit_blas_threads()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    everything = build_features_from_file(args.events, videos=args.videos, session_gap_minutes=DEFAULT_GAP_MINUTES)
    cut = everything.data_end - TEST_DAYS * DAY
    work = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    events = pd.read_csv(args.events) if args.events.suffix != ".parquet" else pd.read_parquet(args.events)
    before = work / "events-before-cut.csv.gz"
    events[pd.to_numeric(events["timestamp"], errors="coerce") < cut].to_csv(before, index=False)

    relevance = Relevance.for_events(everything.pair_events)
    video_ids = everything.video_ids
    index = {video: position for position, video in enumerate(video_ids)}
    ours_dir = trained(PROJECT_ROOT, before, args.videos, work / "ours")
    theirs_dir = trained(args.against.resolve(), before, args.videos, work / "theirs")
    ours = Recommender.load(ours_dir)
    known = np.zeros(len(everything.user_ids), dtype=bool)
    known[[i for i, user in enumerate(everything.user_ids) if ours.users.index_of(user) is not None]] = True

    watches = everything.watches(relevance.events)
    durations = everything.videos["duration_seconds"].to_numpy(np.float64) if everything.videos is not None else None
    queries = sitting_queries(
        watches, start=cut, end=everything.data_end, relevance=relevance, videos=len(video_ids),
        durations=durations, among=known,
    )  # fmt: skip
    home_users, home_targets = home(everything, relevance, cut, known)
    print(f"cut {cut}: {len(queries)} judged sittings ({GIVEN} watches given), {len(home_users)} judged users at home")
    user_ids = everything.user_ids

    def history(row: int) -> list[dict]:
        videos, times, seconds = queries.given[row]
        return [
            {"videoId": video_ids[v], "timestamp": int(t)} | ({} if np.isnan(s) else {"watchedSeconds": float(s)})
            for v, t, s in zip(videos, times, seconds)
        ]

    bodies = {
        "home": [{"user_id": user_ids[user], "k": K} for user in home_users],
        "in session": [
            {"user_id": user_ids[queries.users[r]], "history": history(r), "k": K} for r in range(len(queries))
        ],
        "history only": [{"history": history(r), "k": K} for r in range(len(queries))],
        "up next": [{"video_id": video_ids[video], "k": K} for video in queries.last],
    }
    plain_history = {  # today's pipeline reads history as a list of ids
        "in session": [
            body | {"history": [item["videoId"] for item in body["history"]]} for body in bodies["in session"]
        ],
        "history only": [
            {"history": [item["videoId"] for item in body["history"]], "k": K} for body in bodies["history only"]
        ],
    }
    results: dict[str, dict[str, float]] = {"ours": {}, "today": {}}
    for name, directory, wire in (("ours", ours_dir, bodies), ("today", theirs_dir, bodies | plain_history)):
        server = Server(directory, root=PROJECT_ROOT if name == "ours" else args.against.resolve())
        try:
            for judgement, sent in wire.items():
                targets = home_targets if judgement == "home" else queries.targets
                results[name][judgement] = ndcg(asked(server.url, sent), targets, index)
        finally:
            server.stop()
    table = ours.ranking.sessions.next
    watched = everything.indicator(everything.interactions["first_timestamp"].to_numpy() < cut)
    filters = given_filters(queries, watched)
    offline = {
        "watched-next alone (in session)": RankedLists(
            *padded_lists(watched_next_lists(table, queries, filters, k=K), K), queries.targets
        ).metrics(K)["ndcg"],
        "watched-next alone (up next)": RankedLists(
            *padded_lists(watched_next_lists(table, queries, filters, k=K, recent=1), K), queries.targets
        ).metrics(K)["ndcg"],
        "factor similarity (up next)": RankedLists(
            *padded_lists(up_next_lists(ours.ranking.items, None, queries.last, k=K, blend=0.0), K), queries.targets
        ).metrics(K)["ndcg"],
    }
    for name in ("home", "in session", "history only", "up next"):
        report(f"{name}: ours NDCG@10", results["ours"][name], "")
        report(f"{name}: today's pipeline NDCG@10", results["today"][name], "")
    for name, value in offline.items():
        report(f"{name} NDCG@10", value, "")
    ours, today = results["ours"], results["today"]
    in_session_next, up_next_next = offline["watched-next alone (in session)"], offline["watched-next alone (up next)"]
    for name, anchor, value, target in (
        ("in session", "today's pipeline", today["in session"], "≥ 2"),
        ("in session", "watched-next alone", in_session_next, "≥ 1.1"),
        ("history only", "today's pipeline", today["history only"], "≥ 2"),
        ("history only", "watched-next alone", in_session_next, "≥ 1.1"),
        ("up next", "factor similarity", offline["factor similarity (up next)"], "≥ 1.1"),
        ("up next", "watched-next alone", up_next_next, "≥ 1.1"),
        ("home", "today's pipeline", today["home"], "≥ 1 (within noise)"),
    ):
        report(f"{name}: ours / {anchor}", ours[name] / value if value else float("inf"), "×", f"target {target}")


def home(features, relevance: Relevance, cut: int, known: np.ndarray) -> tuple[np.ndarray, csr_matrix]:
    """Users the model knows with a satisfying first watch in the TEST_DAYS after the cut, and those watches."""
    interactions = features.interactions
    first = interactions["first_timestamp"].to_numpy()
    inside = (first >= cut) & (first < cut + TEST_DAYS * DAY)
    relevant = inside & relevance.mask(features.pair_events.subset(features.pair_events.timestamp >= cut))
    targets = features.indicator(relevant)
    users = np.flatnonzero((np.diff(targets.indptr) > 0) & known)
    return users, targets[users]


if __name__ == "__main__":
    main()
