"""Fixtures build small real artifacts with the project's own code; nothing of ours is mocked."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.synthetic import random_model
from features.build_features import build_features
from features.catalogue import validate_catalogue
from features.events import validate_events
from features.feature_set import FeatureSet
from features.sample_events import generate_events, generate_platform
from tests.aws import moto_server
from tests.container import build_image, ensure_engine
from vrmodels.model.threads import limit_blas_threads
from vrmodels.training.als import TrainParams
from vrmodels.training.model_dir import save_versioned, to_artifacts
from vrmodels.training.options import TrainingOptions
from vrmodels.training.trainer import train

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
IMAGE = "vr-recommender:test"
SMALL_PARAMS = TrainParams(factors=16, regularization=5.0, alpha=1.0, iterations=10, seed=3)


def pytest_configure(config: pytest.Config) -> None:
    limit_blas_threads()  # as every entry point does first


LONG_FIRST = ("spark", "container", "aws")
"""Markers of the files to start first: pytest-xdist hands out whole files in collection order (--dist loadfile
--no-loadscope-reorder, as the Makefile runs it), and a Spark or container file begun last kept one worker busy for
minutes while the other sat idle."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding tests of LONG_FIRST's markers first (Spark's, then containers', then AWS's), each file's tests
    in their own order."""

    def rank(item: pytest.Item) -> int:
        marked = [index for index, name in enumerate(LONG_FIRST) if item.get_closest_marker(name)]
        return min(marked, default=len(LONG_FIRST))

    files: dict[str, int] = {}
    for item in items:
        file = item.nodeid.partition("::")[0]
        files[file] = min(files.get(file, len(LONG_FIRST)), rank(item))
    items.sort(key=lambda item: files[item.nodeid.partition("::")[0]])  # stable


@pytest.fixture(scope="module")
def moto_url():
    """A moto server on 127.0.0.1 for one test module (tests.aws.moto_server); reset it where state matters."""
    yield from moto_server()


@pytest.fixture(scope="session")
def sample_events() -> pd.DataFrame:
    return validate_events(generate_events(users=400, videos=80, mean_events=20, seed=11), "generated")


@pytest.fixture(scope="session")
def sample_features(sample_events: pd.DataFrame) -> FeatureSet:
    return build_features(sample_events)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, sample_features: FeatureSet) -> Path:
    """A real, trained, versioned model directory (read-only for the tests that use it)."""
    result = train(sample_features, SMALL_PARAMS)
    return save_versioned(to_artifacts(result.trained), tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def platform_features() -> FeatureSet:
    """A small video platform with its catalogue: channels, categories, daily uploads, fresh-seeking users."""
    platform = generate_platform(users=800, videos=400, seed=5)
    return build_features(
        validate_events(platform.events, "platform events"), videos=validate_catalogue(platform.videos, "catalogue")
    )


@pytest.fixture(scope="session")
def platform_model_dir(tmp_path_factory: pytest.TempPathFactory, platform_features: FeatureSet) -> Path:
    """The two-stage model of that platform: ALS with metadata priors, catalogue tables, a learned ranker."""
    result = train(platform_features, SMALL_PARAMS, TrainingOptions(ranker="on"))
    return save_versioned(to_artifacts(result.trained), tmp_path_factory.mktemp("platform-models"))


@pytest.fixture(scope="session")
def big_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random factors over a 20,000-video catalogue, with top-100 lists: big enough for costly requests."""
    return random_model(tmp_path_factory.mktemp("big") / "model", users=2000, videos=20_000, factors=32, topn=100)


@pytest.fixture(scope="session")
def image() -> str:
    """The project's image, built by a real Docker engine (installed and started when needed)."""
    ensure_engine()
    seconds, size = build_image(IMAGE)
    print(f"\nimage {IMAGE}: built in {seconds:.1f}s, {size / 1e6:.0f} MB")
    return IMAGE
