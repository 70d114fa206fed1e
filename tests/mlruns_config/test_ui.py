"""`make ui` prints its links when the UI answers, with the export line for MLflow's own tools, and stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import requests

from sotag.infra.tracking import TrackingSettings
from sotag.mlruns_config.servers import free_port
from sotag.settings import load_settings

pytestmark = pytest.mark.integration


def test_make_ui_prints_its_links_once_the_ui_answers(tmp_path):
    port = free_port()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SOTAG_"))}
    env.update(MLFLOW_TRACKING_URI=uri, SOTAG_ARTIFACT_ROOT=(tmp_path / "artifacts").as_uri())
    proc = subprocess.Popen(
        [sys.executable, "-m", "sotag.mlruns_config.ui", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "registered model" in line:
                # The moment the links appear, the UI answers.
                assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
            if line.startswith("  export MLFLOW_TRACKING_URI="):
                break
        text = "\n".join(lines)
        assert lines[0].startswith(f"mlflow ui on {uri}: starting on http://127.0.0.1:{port}"), text
        assert f"mlflow ui answers on http://127.0.0.1:{port}:" in text
        assert "training runs          (none yet: make demo / make train)" in text
        assert "drift-monitoring runs  (none yet: make drift)" in text
        assert f"registered model       http://127.0.0.1:{port}/#/models/stackoverflow-tagger" in text
        assert lines[-1] == f"  export MLFLOW_TRACKING_URI={uri}"
        # While it runs, commands in that folder print links on its port, not 5000.
        here = TrackingSettings.from_settings(load_settings(environ=env, cwd=tmp_path).settings)
        assert here.ui_url == f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert not (tmp_path / ".mlflow-ui-url").exists()
    assert TrackingSettings.from_settings(load_settings(environ=env, cwd=tmp_path).settings).ui_url.endswith(":5000")
    with pytest.raises(requests.ConnectionError):  # the UI went with it
        requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
