"""Shared fixtures: a small synthetic question set and a throwaway MLflow store per test."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pandas as pd
import pytest

from tests.support import settings as support_settings
from tests.support.settings import tracking_settings

# The DAG tests run with Airflow's own python (make test-dags), never in sotag's virtualenv, which has no Airflow.
collect_ignore = ["dags"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# The shared data set (38k questions, with the topic-specific sources the drift tests plant), through the one
# resolver's location; $SOTAG_DATA points the tests elsewhere.
SHARED_DATA = Path(os.environ.get("SOTAG_DATA") or support_settings.SHARED_DATA)

TOPICS = {
    "python": ["python", "pandas dataframe", "list comprehension", "pip install", "django view"],
    "javascript": ["javascript", "react component", "node npm", "promise async", "dom event"],
    "java": ["java", "spring boot", "jvm heap", "maven build", "hibernate entity"],
    "sql": ["sql", "join query", "select where", "postgres index", "mysql table"],
    "css": ["css", "flexbox layout", "margin padding", "media query", "selector color"],
    "docker": ["docker", "container image", "dockerfile build", "compose service", "volume mount"],
}
COMPANIONS = {"python": "pandas", "javascript": "reactjs", "java": "spring", "sql": "postgresql", "css": "html"}


def make_questions(n: int = 360, seed: int = 0) -> pd.DataFrame:
    """Questions whose words reveal their tags, spread over 2017-01 .. 2018-06."""
    rng = random.Random(seed)
    topics = list(TOPICS)
    start = pd.Timestamp("2017-01-01")
    rows = []
    for i in range(n):
        main = topics[i % len(topics)]
        tags = [main]
        if main in COMPANIONS and rng.random() < 0.5:
            tags.append(COMPANIONS[main])
        if rng.random() < 0.2:
            tags.append(rng.choice([t for t in topics if t != main]))
        words = [rng.choice(TOPICS[t]) for t in tags if t in TOPICS for _ in range(2)]
        title = f"How do I fix {words[0]} with {words[-1]}?"
        body = f"<p>I use {' and '.join(words)} &amp; it fails.</p><pre><code>{main}_call(x)\n</code></pre>"
        rows.append(
            {
                "id": 1000 + i,
                "creation_date": start + pd.Timedelta(days=int(i * 540 / n), hours=rng.randint(0, 23)),
                "title": title,
                "body": body,
                "tags": tags,
                "source": "synthetic",
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(autouse=True)
def _mlflow_process_state():
    """Undo what a test left in MLflow's process-wide state: the `tracking` fixture and an in-process command's
    `use_fluent` point MLflow's tracking and registry URIs at the test's store, and `mlflow.set_registry_uri` also
    exports MLFLOW_REGISTRY_URI. Left behind, a later test's `MlflowClient(server_url)` (no registry URI given) read
    the registry of an earlier test's SQLite file: the "v3 not found" fault-scenario flake. MLflow has no public
    reset, so the module attributes are restored by name."""
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    environment = {name: os.environ.get(name) for name in names}
    yield
    tracking_utils._tracking_uri, registry_utils._registry_uri = saved
    for name, value in environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def questions() -> pd.DataFrame:
    return make_questions()


@pytest.fixture(scope="session")
def questions_parquet(tmp_path_factory: pytest.TempPathFactory, questions: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("data") / "questions.parquet"
    questions.to_parquet(path)
    return path


@pytest.fixture()
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An embedded MLflow store of the test's own, set through the one setting users use."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("SOTAG_ARTIFACT_ROOT", (tmp_path / "artifacts").as_uri())
    monkeypatch.setenv("SOTAG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SOTAG_LOCK_DIR", str(tmp_path / "locks"))
    settings = tracking_settings()
    # For the tests' own bare MlflowClient() and mlflow.get_run: product code takes `settings` instead.
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    return settings


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_file():
        pytest.skip(
            f"needs the shared data set (38k questions, with its topic-specific sources), absent at {SHARED_DATA}: "
            "a bare clone has only the bundled sample; set SOTAG_DATA to run it"
        )
    return SHARED_DATA
