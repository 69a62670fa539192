"""The anchor of the server benchmark: the tutorial's own app, reproduced from its text (../shared/seeds/003_*).

Its `serving/app.py` is copied as written: FastAPI, a pydantic request model, synchronous endpoints (FastAPI
runs them in its thread pool), one implicit `recommend` per request, a 404 for an unknown user. Its
`serve.py` runs `uvicorn.run("serving.app:app", host="0.0.0.0", port=8080)`: one process. The tutorial does
not show its `vrmodels.recommend.recommend(user_id, k)`; the obvious implementation is used: the user's row of
the interaction matrix and `model.recommend(user, row, N=k)`, ids mapped back to strings (a dict and a list,
read from our model directory's id files of any format).

    VR_MODEL_DIR=DIR SAGEMAKER_BIND_TO_PORT=PORT python -m bench.tutorial_app
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import uvicorn
from fastapi import FastAPI, HTTPException
from implicit.cpu.als import AlternatingLeastSquares
from pydantic import BaseModel
from scipy.sparse import csr_matrix

from vrmodels.model.ids import IdIndex
from vrmodels.model.threads import limit_blas_threads

MODEL_DIR = Path(os.environ.get("VR_MODEL_DIR", "artifacts/models/latest"))


def _load() -> tuple[AlternatingLeastSquares, csr_matrix, dict[str, int], list[str]]:
    model = AlternatingLeastSquares()
    model.user_factors = np.load(MODEL_DIR / "user_factors.npy")
    model.item_factors = np.load(MODEL_DIR / "item_factors.npy")
    parts = [np.load(MODEL_DIR / f"user_items_{part}.npy") for part in ("data", "indices", "indptr")]
    users, videos = (_ids("user"), _ids("video"))
    matrix = csr_matrix(tuple(parts), shape=(len(users), len(videos)))
    return model, matrix, {user: index for index, user in enumerate(users)}, videos


def _ids(kind: str) -> list[str]:
    """Ids in index order: format 4 keeps them as arrays (vrmodels.model.ids), formats 1-3 as JSON lists."""
    legacy = MODEL_DIR / f"{kind}_ids.json"
    if legacy.exists():
        return json.loads(legacy.read_text())
    return IdIndex.load(MODEL_DIR, f"{kind}_ids").all_ids()


limit_blas_threads()  # as every process of ours does, so that only the app differs
_model, _user_items, _user_index, _video_ids = _load()  # at import, as the tutorial's module does


def get_recommendations(user_id: str, k: int) -> list[tuple[str, float]]:
    user = _user_index[user_id]  # KeyError for an unknown user, as the tutorial expects
    ids, scores = _model.recommend(user, _user_items[user], N=k)
    return [(_video_ids[i], float(s)) for i, s in zip(ids, scores)]


# ---- the tutorial's serving/app.py, as written ----
app = FastAPI(title="Video Recommendation API")


@app.get("/ping")
def ping():
    return {"status": "ok"}


class RecommendRequest(BaseModel):
    user_id: str
    k: int = 5


@app.post("/invocations")
def invocations(req: RecommendRequest):
    return recommend(req.user_id, req.k)


def recommend(user_id: str, k: int = 5):
    try:
        recommendations = get_recommendations(user_id, k)

        if not recommendations:
            raise HTTPException(status_code=404, detail="No recommendations available for user")

        return {
            "userId": user_id,
            "recommendations": [{"videoId": video_id, "score": score} for video_id, score in recommendations],
        }
    except KeyError:
        raise HTTPException(status_code=404, detail=f"User '{user_id}' not found") from None


# ---- the tutorial's serve.py ----
if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))
