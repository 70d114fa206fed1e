"""`make bench-loop`: the production loop replayed week by week on real time-ordered questions.

The data: the shared questions (2008 → 2018-05-31) and the recent file (June 2026). The replay serves the weeks
(Monday to Sunday, UTC) from `--start` (2018-04-09: the 8 last weeks of the main file) to the end of the main file,
then the weeks of June 2026 (its one question of 2026-05-29 joins the first): 13 weekly cycles. Cycle k:

1. the inbox gets the questions the store has not seen yet (cycle 1: everything before the first served week,
   the initial store; then the week served by the cycle before), as one parquet file;
2. `weekly_ml_pipeline` runs with Airflow's own CLI (`airflow dags test`, `.venv-airflow`): ingest → retrain →
   the gate's decision, read from its tasks' return values (XCom) and the registry's @champion;
3. a real `sotag gateway` (started once, after the first champion; it follows @champion by polling the alias,
   and the bench waits until `/health` serves the new champion) answers week k's questions on `/predict/batch`
   (top_k 5, threshold 0: the five best tags of every question), logging them to the prediction log;
4. the replay's clock: the gateway stamps each logged row with the wall-clock time; the bench moves the rows served
   for week k onto week k's calendar (each row's `ts` = its question's creation date), so the drift windows see
   the weeks as production would have;
5. `daily_drift_check` runs with `as_of` = the end of week k (its defaults: the last 7 days against the 30 before)
   and its severity is read; `not-judged` when the log holds too few rows for a reference window (the first week
   of each era: the log starts with the replay);
6. all-tags P@1 and R@5 on week k (every tag its asker chose) of the gateway's answers, and of the first champion
   (frozen: loaded once from the registry, scored in this process).

One line per cycle: `week=<served week> ingested=<rows the weekly run ingested> decision=… champion=v… drift=…
p1_all=… r5_all=… frozen_p1_all=… frozen_r5_all=… served=<questions served>`, then
`loop: weeks=N promotions=P kept=K false_alerts=F p1_all_loop=X p1_all_frozen=Y lost_rows=L` (P@1 averaged over the
weeks; false_alerts: alerts on 2018 weeks, where the data did not change era; lost_rows: rows fed to the inbox minus
rows in the store, plus questions sent minus rows in the prediction log).

Everything lives in `--workdir` (default `<home>/.bench-loop/<timestamp>`): the sotag settings file `sotag.toml`
(home, store, embedded MLflow store, prediction log), the inbox, and Airflow's home (SQLite, the DAGs of dags/).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import pandas as pd
import requests
import sqlalchemy as sa

from bench.common import bench_settings
from sotag.data.store import engine_for, questions_table
from sotag.infra.prediction_log import PREDICTIONS, input_digest
from sotag.infra.tracking import MODEL_NAME
from sotag.tagger.metrics import all_tags_metrics
from sotag.tagger.text import normalize_newlines

REPO = Path(__file__).resolve().parents[1]
SOTAG = REPO / ".venv" / "bin" / "sotag"
AIRFLOW = REPO / ".venv-airflow" / "bin" / "airflow"
SHARED = REPO.parent / "shared" / "data" / "stackoverflow"
MAIN_FILE = SHARED / "questions.parquet"
RECENT_FILE = SHARED / "recent" / "questions_2026_06.parquet"
DEFAULT_START = "2018-04-09"
RECENT_ERA = pd.Timestamp("2026-06-01")  # the recent file's weeks start here (its one earlier question joins)
BATCH = 500  # questions per /predict/batch request (the gateway's limit is 1,000)
COLUMNS = ["id", "creation_date", "title", "body", "tags", "source"]


def say(message: str) -> None:
    """Progress, on stderr (the result lines are stdout's)."""
    print(f"[bench-loop {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the weeks ---------------------------------------------------------------------------------------------------


@dataclass
class Week:
    start: pd.Timestamp
    questions: pd.DataFrame

    @property
    def label(self) -> str:
        return self.start.strftime("%Y-%m-%d")

    @property
    def end(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(days=7)

    @property
    def recent(self) -> bool:
        return self.start >= RECENT_ERA


def monday(dates: pd.Series) -> pd.Series:
    return dates.dt.normalize() - pd.to_timedelta(dates.dt.weekday, unit="D")


def replay_weeks(main: pd.DataFrame, recent: pd.DataFrame, start: pd.Timestamp) -> tuple[pd.DataFrame, list[Week]]:
    """(the initial store: every main question before `start`; the served weeks, in time order)."""
    initial = main[main["creation_date"] < start]
    later = main[main["creation_date"] >= start]
    weeks = [Week(s, f) for s, f in later.groupby(monday(later["creation_date"]), sort=True)]
    recent_starts = monday(recent["creation_date"]).clip(lower=RECENT_ERA)
    weeks += [Week(s, f) for s, f in recent.groupby(recent_starts, sort=True)]
    return initial, weeks


# --- the workdir: sotag's settings, Airflow's home -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Workdir:
    root: Path
    kind: str
    port: int = field(default_factory=free_port)

    @property
    def config(self) -> Path:
        return self.root / "sotag.toml"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.root / 'questions.db'}"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def prediction_log(self) -> str:
        return f"sqlite:///{self.root / 'predictions.db'}"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    def write_settings(self) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f'home = "{self.root}"\n\n'
            f'[train]\nkind = "{self.kind}"\n\n'
            f'[tracking]\nuri = "{self.tracking_uri}"\n\n'
            f'[store]\nurl = "{self.store_url}"\ninbox = "{self.inbox}"\n\n'
            "[gateway]\n"
            f"port = {self.port}\n"
            f'prediction_log = "{self.prediction_log}"\n'
            "log_text = true  # the daily drift check embeds the logged questions\n"
            "reload_poll_s = 1.0  # follow @champion within a second of a promotion\n"
            "request_timeout_s = 120.0  # a batch on a loaded machine is never cut (its rows would be lost)\n"
        )

    def sotag_env(self) -> dict[str, str]:
        """The environment of every child: sotag's settings come from the settings file alone."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SOTAG_", "MLFLOW_", "AIRFLOW"))}
        env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "SOTAG_CONFIG": str(self.config)})
        return env

    def airflow_env(self) -> dict[str, str]:
        env = self.sotag_env()
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.airflow_home / 'airflow.db'}",
                "SOTAG_BIN": str(SOTAG),
                "PATH": f"{AIRFLOW.parent}:{env.get('PATH', '')}",
            }
        )
        return env


# --- Airflow -------------------------------------------------------------------------------------------------------


@dataclass
class DagRun:
    run_id: str
    state: str
    tasks: dict[str, str]  # task_id -> state
    returned: dict[str, Any]  # task_id -> return value (XCom)
    output: str  # `airflow dags test`'s output


def airflow(work: Workdir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(AIRFLOW), *args], env=work.airflow_env(), capture_output=True, text=True, check=False, cwd=work.root
    )


def dag_test(work: Workdir, dag_id: str, name: str, conf: dict[str, Any]) -> DagRun:
    """`airflow dags test DAG -c CONF` (its logical date: now; the DAGs start in 2026, so a replayed week's date
    would schedule no task: the replay's dates travel in CONF), then the run's state, its tasks' states and return
    values, read from Airflow's metadata database where the run recorded them. `name`: its output's log file."""
    db = work.airflow_home / "airflow.db"
    with contextlib.closing(sqlite3.connect(db)) as c:
        before = c.execute("select coalesce(max(id), 0) from dag_run").fetchone()[0]
    proc = airflow(work, "dags", "test", dag_id, "-c", json.dumps(conf))
    output = proc.stdout + proc.stderr
    (work.root / "logs").mkdir(exist_ok=True)
    (work.root / "logs" / f"{dag_id}-{name}.log").write_text(output)
    with contextlib.closing(sqlite3.connect(db)) as c:
        row = c.execute(
            "select run_id, state from dag_run where dag_id = ? and id > ? order by id limit 1", (dag_id, before)
        ).fetchone()
        if row is None:
            raise RuntimeError(f"airflow dags test {dag_id} made no run (exit {proc.returncode}): {output[-2000:]}")
        run_id, state = row
        tasks = dict(
            c.execute("select task_id, state from task_instance where dag_id = ? and run_id = ?", (dag_id, run_id))
        )
        xcoms = c.execute(
            "select task_id, value from xcom where dag_id = ? and run_id = ? and key = 'return_value'",
            (dag_id, run_id),
        ).fetchall()
    if not tasks:
        raise RuntimeError(f"airflow dags test {dag_id}: run {run_id} ran no task (exit {proc.returncode})")
    returned = {task: json.loads(value) if isinstance(value, str | bytes) else value for task, value in xcoms}
    return DagRun(run_id, str(state), {k: str(v) for k, v in tasks.items()}, returned, output)


# --- the gateway ---------------------------------------------------------------------------------------------------


class Gateway:
    """`sotag gateway` on 127.0.0.1, in a session of its own (stopped with the whole session)."""

    def __init__(self, work: Workdir):
        self.work = work
        self.url = f"http://127.0.0.1:{work.port}"
        self.log_path = work.root / "logs" / "gateway.log"
        self.log_path.parent.mkdir(exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.session = requests.Session()

    def start(self, timeout_s: float = 300) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(SOTAG), "gateway", "--config", str(self.work.config), "--port", str(self.work.port)],
                env=self.work.sotag_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                cwd=self.work.root,
            )  # fmt: skip
        self.poll(lambda h: True, timeout_s, "answer /health")

    def health(self) -> dict[str, Any] | None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the gateway exited {self.proc.returncode}: {tail}")
        try:
            response = self.session.get(f"{self.url}/health", timeout=10)
        except requests.RequestException:
            return None
        return response.json() if response.status_code == 200 else None

    def poll(self, ready, timeout_s: float, what: str) -> dict[str, Any]:
        """/health until `ready(health)`; RuntimeError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            last = self.health()
            if last is not None and ready(last):
                return last
            time.sleep(0.2)
        raise RuntimeError(f"the gateway did not {what} within {timeout_s:.0f} s: /health {last}")

    def serving(self, version: str, timeout_s: float = 300) -> None:
        """Wait until the gateway's alias watch has swapped to `version`."""
        self.poll(lambda h: h["model"]["version"] == version, timeout_s, f"serve v{version}")

    def predict(self, questions: pd.DataFrame, version: str) -> list[list[str]]:
        """Every question's five best tags, in order; each answer must come from `version`."""
        out: list[list[str]] = []
        for i in range(0, len(questions), BATCH):
            chunk = questions.iloc[i : i + BATCH]
            body = {
                "questions": [{"title": t, "body": b} for t, b in zip(chunk["title"], chunk["body"], strict=True)],
                "top_k": 5,
                "threshold": 0.0,
            }
            response = self.session.post(f"{self.url}/predict/batch", json=body, timeout=600)
            if response.status_code != 200:
                raise RuntimeError(f"/predict/batch answered {response.status_code}: {response.text[:500]}")
            answer = response.json()
            if answer["model"]["version"] != version:
                raise RuntimeError(f"/predict/batch answered with v{answer['model']['version']}, not v{version}")
            out += [r["tags"] for r in answer["results"]]
        return out

    def logged(self, total: int, timeout_s: float = 120) -> None:
        """Wait until the prediction log has written `total` rows since the gateway started."""
        self.poll(lambda h: h["predictions_logged"] >= total, timeout_s, f"log {total} predictions")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


# --- the replay's clock, the counts ------------------------------------------------------------------------------


def replay_clock(log_url: str, after_id: int, questions: pd.DataFrame) -> int:
    """Move the log's rows after `after_id` (the ones just served, in the order sent: one client, one writer
    thread, ids ascending) onto the questions' creation dates; each row's input digest must be its question's.
    Returns the log's highest id."""
    engine = engine_for(log_url)
    table = PREDICTIONS
    with engine.begin() as connection:
        rows = connection.execute(
            sa.select(table.c.id, table.c.input_digest).where(table.c.id > after_id).order_by(table.c.id)
        ).all()
        if len(rows) != len(questions):
            raise RuntimeError(f"prediction log: {len(rows)} new rows for {len(questions)} questions served")
        expected = [
            input_digest(normalize_newlines(t), normalize_newlines(b))
            for t, b in zip(questions["title"], questions["body"], strict=True)
        ]
        wrong = sum(digest != want for (_, digest), want in zip(rows, expected, strict=True))
        if wrong:
            raise RuntimeError(f"prediction log: {wrong} rows are not the questions served, in order")
        stamps = [d.to_pydatetime().replace(tzinfo=UTC) for d in questions["creation_date"]]
        connection.execute(
            sa.update(table).where(table.c.id == sa.bindparam("row_id")).values(ts=sa.bindparam("stamp")),
            [{"row_id": row_id, "stamp": stamp} for (row_id, _), stamp in zip(rows, stamps, strict=True)],
        )
    engine.dispose()
    return rows[-1][0] if rows else after_id


def count_rows(url: str, table: sa.Table) -> int:
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    except sa.exc.OperationalError:  # no table yet
        return 0
    finally:
        engine.dispose()


def champion_version(work: Workdir) -> str | None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        client = MlflowClient(work.tracking_uri, work.tracking_uri)
        return str(client.get_model_version_by_alias(MODEL_NAME, "champion").version)  # an int in SQL stores
    except MlflowException:
        return None


def load_frozen(work: Workdir, version: str):
    import mlflow.pyfunc

    mlflow.set_tracking_uri(work.tracking_uri)
    mlflow.set_registry_uri(work.tracking_uri)
    return mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}")


def frozen_tags(model, questions: pd.DataFrame) -> list[list[str]]:
    answers = model.predict(questions[["title", "body"]].reset_index(drop=True), params={"top_k": 5, "threshold": 0.0})
    return [a["tags"] for a in answers]


def scores(suggested: list[list[str]], questions: pd.DataFrame) -> tuple[float, float]:
    truth = [list(t) for t in questions["tags"]]
    if not any(truth):
        return float("nan"), float("nan")
    m = all_tags_metrics(suggested, truth)
    return m["precision_at_1_all"], m["recall_at_5_all"]


# --- one cycle -----------------------------------------------------------------------------------------------------


@dataclass
class Cycle:
    week: Week
    ingested: int
    decision: str
    champion: str
    reason: str
    drift: str = "not-judged"
    p1: float = float("nan")
    r5: float = float("nan")
    frozen_p1: float = float("nan")
    frozen_r5: float = float("nan")

    def line(self) -> str:
        return (
            f"week={self.week.label} ingested={self.ingested} decision={self.decision} champion=v{self.champion} "
            f"drift={self.drift} p1_all={self.p1:.4f} r5_all={self.r5:.4f} frozen_p1_all={self.frozen_p1:.4f} "
            f"frozen_r5_all={self.frozen_r5:.4f} served={len(self.week.questions)}"
        )


def weekly_run(work: Workdir, week: Week, label: str, fed: pd.DataFrame, conf: dict[str, Any]) -> tuple[str, str, str]:
    """The inbox gets `fed` as `<label>.parquet`, the weekly DAG runs (its logical date: the Monday of the week
    it prepares): (decision, champion version, the gate's line)."""
    fed[COLUMNS].to_parquet(work.inbox / f"{label}.parquet", index=False)
    run = dag_test(work, "weekly_ml_pipeline", week.label, conf)
    if run.state != "success":
        raise RuntimeError(f"weekly_ml_pipeline {run.run_id}: {run.state} {run.tasks} (log: {work.root / 'logs'})")
    ingest, outcome = run.returned.get("ingest", ""), run.returned.get("retrain") or {}
    if f"read={len(fed)} " not in str(ingest):
        raise RuntimeError(f"weekly_ml_pipeline ingested something else than the {len(fed)} rows fed: {ingest}")
    champion = champion_version(work)
    if champion is None:
        raise RuntimeError(f"no @champion after the weekly run ({outcome.get('reason')}): nothing to serve")
    return str(outcome.get("outcome")), champion, str(outcome.get("reason", ""))


def daily_run(work: Workdir, week: Week) -> str:
    as_of = week.end.strftime("%Y-%m-%d")
    run = dag_test(work, "daily_drift_check", as_of, {"config": str(work.config), "as_of": as_of})
    result = run.returned.get("drift")
    if run.tasks.get("drift") == "success" and result:
        windows = result.get("windows") or []
        reasons = " ".join(" ".join(w.get("reasons") or []) for w in windows)
        if result["severity"] == "ok" and "not judged" in reasons and "embeddings:" in reasons:
            return "not-judged"  # the week's window is under the embeddings' floor: no verdict
        return str(result["severity"])
    if "no verdict" in run.output or "no questions in the data" in run.output:
        return "not-judged"  # too few logged rows in the reference window (the log starts with the replay)
    raise RuntimeError(f"daily_drift_check {run.run_id}: {run.state} {run.tasks} (log: {work.root / 'logs'})")


# --- main ----------------------------------------------------------------------------------------------------------


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", default=None, help="the model kind (default: sotag's train.kind); tfidf is fast")
    parser.add_argument("--weeks", type=int, default=None, help="replay only the first N weeks")
    parser.add_argument("--workdir", type=Path, default=None, help="default: <home>/.bench-loop/<timestamp>")
    parser.add_argument("--start", default=DEFAULT_START, help=f"the first served week's Monday ({DEFAULT_START})")
    parser.add_argument(
        "--eval-days",
        type=int,
        default=7,
        help="the weekly run's eval_days: a weekly loop judges on the newest week, so each week's questions are "
        "trained on the next week (sotag's own default, 30, would hold June 2026 out of training all month)",
    )
    parser.add_argument("--questions", type=Path, default=MAIN_FILE)
    parser.add_argument("--recent", type=Path, default=RECENT_FILE)
    args = parser.parse_args()
    if args.weeks is not None and args.weeks < 1:
        parser.error("--weeks: at least 1")
    start = pd.Timestamp(args.start)
    if start.weekday() != 0:
        parser.error(f"--start {args.start}: not a Monday")
    for path in (args.questions, args.recent, SOTAG, AIRFLOW):
        if not path.exists():
            parser.error(f"{path}: missing (make setup airflow-setup; the shared data beside the repository)")
    return args


def main() -> None:
    args = parse()
    settings = bench_settings()
    kind = args.kind or settings.train.kind
    root = (args.workdir or settings.home / ".bench-loop" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    if root.exists() and any(root.iterdir()):
        sys.exit(f"bench-loop: {root} is not empty: the replay starts from nothing")
    root.mkdir(parents=True, exist_ok=True)
    work = Workdir(root, kind)
    work.write_settings()

    main_q = pd.read_parquet(args.questions, columns=COLUMNS)
    recent_q = pd.read_parquet(args.recent, columns=COLUMNS)
    initial, weeks = replay_weeks(main_q, recent_q, pd.Timestamp(args.start))
    weeks = weeks[: args.weeks] if args.weeks else weeks
    say(f"workdir {root} (kind {kind}); initial store {len(initial)} questions before {args.start}; {len(weeks)} "
        f"weeks: " + ", ".join(f"{w.label} ({len(w.questions)})" for w in weeks))  # fmt: skip

    say("airflow db migrate")
    migrated = airflow(work, "db", "migrate")
    if migrated.returncode != 0:
        sys.exit(f"bench-loop: airflow db migrate exited {migrated.returncode}: {migrated.stderr[-2000:]}")

    conf: dict[str, Any] = {"config": str(work.config)}
    if args.eval_days is not None:
        conf["eval_days"] = args.eval_days
    gateway = Gateway(work)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds through the finally: the gateway stops
    cycles: list[Cycle] = []
    fed_rows = sent_rows = 0
    last_log_id = 0
    frozen = None
    try:
        feed = initial
        for n, week in enumerate(weeks, 1):
            fed_label = f"initial-before-{week.label}" if n == 1 else weeks[n - 2].label
            say(f"[{n}/{len(weeks)}] {week.label}: weekly run on {len(feed)} new questions ({fed_label})")
            started = time.perf_counter()
            decision, champion, reason = weekly_run(work, week, fed_label, feed, conf)
            fed_rows += len(feed)
            say(
                f"[{n}/{len(weeks)}] {decision}, champion v{champion} ({time.perf_counter() - started:.0f} s): {reason}"
            )
            cycle = Cycle(week, len(feed), decision, champion, reason)
            if frozen is None:
                say(f"the frozen model: v{champion}, loaded from the registry; starting the gateway")
                frozen = load_frozen(work, champion)
                gateway.start()
            gateway.serving(champion)
            questions = week.questions.reset_index(drop=True)
            served = gateway.predict(questions, champion)
            sent_rows += len(questions)
            gateway.logged(sent_rows)
            last_log_id = replay_clock(work.prediction_log, last_log_id, questions)
            cycle.p1, cycle.r5 = scores(served, questions)
            cycle.frozen_p1, cycle.frozen_r5 = scores(frozen_tags(frozen, questions), questions)
            say(f"[{n}/{len(weeks)}] served {len(questions)} questions; daily drift check as of {week.end.date()}")
            cycle.drift = daily_run(work, week)
            cycles.append(cycle)
            print(cycle.line(), flush=True)
            feed = week.questions
    finally:
        gateway.stop()

    store_rows = count_rows(work.store_url, questions_table)
    log_rows = count_rows(work.prediction_log, PREDICTIONS)
    lost = (fed_rows - store_rows) + (sent_rows - log_rows)
    loop_p1 = pd.Series([c.p1 for c in cycles]).mean()
    frozen_p1 = pd.Series([c.frozen_p1 for c in cycles]).mean()
    false_alerts = sum(c.drift == "alert" and not c.week.recent for c in cycles)
    promotions = sum(c.decision == "promoted" for c in cycles)
    say(f"store {store_rows} rows of {fed_rows} fed; prediction log {log_rows} rows of {sent_rows} sent; {root}")
    print(
        f"loop: weeks={len(cycles)} promotions={promotions} kept={len(cycles) - promotions} "
        f"false_alerts={false_alerts} p1_all_loop={loop_p1:.4f} p1_all_frozen={frozen_p1:.4f} lost_rows={lost}"
    )


if __name__ == "__main__":
    main()
