"""`make airflow` (Airflow standalone) serves both DAGs in Airflow's UI, seen in a real headless Chromium (Debian's
chromium + chromedriver, as tests/serving/test_browser.py); the screenshot goes to test-artifacts/screenshots/."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from .conftest import REPO, free_port, start_server, stop_server

pytestmark = pytest.mark.integration
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
DAG_IDS = ("daily_drift_check", "weekly_ml_pipeline")


@pytest.fixture()
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(
            "browser test: Debian's chromium and chromium-driver are not installed and `make test` could not "
            "install them (scripts/system-deps.sh; apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_make_airflow_serves_both_dags_in_the_ui(browser, tmp_path):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    port = free_port()
    # The target as a user runs it, on a free port and a home of the test's own; this process's Airflow settings
    # (the DAG tests' database) are not passed on. Every visitor is admin (the simple auth manager's switch), so
    # the page needs no login.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MAKE", "MFLAGS"))}
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"
    command = ["make", "--no-print-directory", "-C", str(REPO), "airflow", f"AIRFLOW_PORT={port}"]
    command.append(f"AIRFLOW_DIR={tmp_path / 'airflow'}")
    base = f"http://127.0.0.1:{port}"
    standalone = start_server(command, f"{base}/api/v2/monitor/health", env=env, timeout_s=300)
    try:
        # The DAG list fills once the dag-processor has parsed dags/: reload until both are listed.
        deadline = time.monotonic() + 240
        while True:
            browser.get(f"{base}/dags")
            try:
                WebDriverWait(browser, 15).until(
                    lambda d: all(dag_id in d.find_element(By.TAG_NAME, "body").text for dag_id in DAG_IDS)
                )
                break
            except TimeoutException:
                if time.monotonic() > deadline:
                    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                    browser.save_screenshot(str(SCREENSHOTS / "airflow-dags-missing.png"))
                    raise
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "Traceback" not in browser.page_source and "Import Errors" not in body, body[:2000]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / "airflow-dags.png"))
        assert (tmp_path / "airflow" / "airflow.db").is_file()  # the metadata database under the given home
    finally:
        stop_server(standalone, first=signal.SIGINT)  # standalone stops its components on Ctrl-C
