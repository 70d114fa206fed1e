"""The demo app for people who do not read JSON: ask for tags, see the registry, read drift reports.

    make app    # streamlit on 127.0.0.1:8501; the gateway (make gateway) must be running for Ask

Settings come from the environment: SOTAG_API_URL (the gateway, default http://127.0.0.1:8000),
MLFLOW_TRACKING_URI (the registry, default the embedded store), SOTAG_REPORTS_DIR (drift reports,
default reports/drift) and MLFLOW_UI_URL (links to runs, default http://127.0.0.1:5000).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import requests
import streamlit as st

from sotag.infra.drift_summary import SummaryError, latest_summary
from sotag.settings import Settings, load_settings


@dataclass(frozen=True)
class AppSettings:
    api_url: str
    reports_dir: Path
    mlflow_ui_url: str
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> AppSettings:
        return cls(
            api_url=settings.app.api_url.rstrip("/"),
            reports_dir=settings.reports_dir,
            mlflow_ui_url=(settings.tracking.ui_url or "http://127.0.0.1:5000").rstrip("/"),
        )


# The app is a script Streamlit runs: its edge, where the settings are built once.
LOADED = load_settings()
SETTINGS = AppSettings.from_settings(LOADED.settings)


@st.cache_data(ttl=30)
def served_model(api_url: str) -> dict | None:
    """The gateway's /model_info (threshold, top_k, version), or None when it does not answer."""
    try:
        response = requests.get(f"{api_url}/model_info", timeout=SETTINGS.timeout_s)
        return response.json() if response.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None


def ask_page() -> None:
    st.header("Suggest tags for a question")
    model = served_model(SETTINGS.api_url)
    if model is None:
        st.error(f"The tagging API at {SETTINGS.api_url} is not reachable. Start it with `make gateway`.")
        return
    # One default, the served model's (what the API applies when a request names none): the same question
    # gets the same tags here and through the API.
    default_threshold, default_top_k = float(model["threshold"]), int(model["top_k"])
    with st.form("ask"):
        title = st.text_input("Title", placeholder="How do I merge two pandas DataFrames on a column?")
        body = st.text_area("Body (HTML or plain text)", height=180)
        top_k = st.slider("Tags at most", 1, max(10, default_top_k), default_top_k)
        threshold = st.slider(
            "Minimum score", min(0.0, default_threshold), max(1.0, default_threshold), default_threshold, 0.01
        )
        st.caption(
            f"Defaults: the served model's (v{model.get('version') or 'local'}): at most {default_top_k} tags, "
            f"minimum score {default_threshold:.2f}, as the API applies them."
        )
        submitted = st.form_submit_button("Suggest tags")
    if not submitted:
        return
    payload = {"title": title, "body": body, "top_k": top_k, "threshold": threshold}
    try:
        response = requests.post(f"{SETTINGS.api_url}/explain", json=payload, timeout=SETTINGS.timeout_s)
    except requests.RequestException:
        st.error(f"The tagging API at {SETTINGS.api_url} is not reachable. Start it with `make gateway`.")
        return
    try:
        answer = response.json()
    except ValueError:
        st.error(f"The tagging API answered HTTP {response.status_code} without JSON.")
        return
    if response.status_code != 200:
        details = answer.get("details") or []
        problems = "; ".join(f"{d['field']}: {d['problem']}" for d in details) or answer.get("error", "")
        st.warning(f"The question was rejected: {problems}")
        return
    model = answer["model"]
    st.caption(f"Answered by {model['name']} v{model['version']}" + (f" (@{model['alias']})" if model["alias"] else ""))
    if not answer["tags"]:
        st.info("No tag reaches the minimum score. Lower it, or add detail to the question.")
        return
    tags = pd.DataFrame({"tag": answer["tags"], "score": answer["scores"]})
    st.subheader("Suggested tags")
    st.markdown(" ".join(f"`{t}`" for t in tags["tag"]))
    st.bar_chart(tags.set_index("tag")["score"], horizontal=True)
    st.table(tags.set_index("tag"))
    st.subheader("Why these tags")
    for explanation in answer.get("explanations", []):
        st.markdown(f"**{explanation['tag']}** (score {explanation['score']:.3f}, logit {explanation['logit']:.2f})")
        if explanation.get("note"):
            st.caption(explanation["note"])
        terms = pd.DataFrame(explanation["terms"], columns=["term", "value", "weight", "contribution"])
        if not terms.empty:
            st.table(terms.set_index("term").round(3))
        st.caption(
            f"intercept {explanation['intercept']:.2f} · other terms {explanation['other_terms']:+.2f}: "
            "intercept + contributions = logit"
        )


@st.cache_data(ttl=30)
def registry_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    from sotag.infra.tracking import TrackingSettings
    from sotag.registry.card import read_card
    from sotag.registry.lifecycle import gate_label
    from sotag.registry.store import open_registry

    registry = open_registry(TrackingSettings.from_settings(LOADED.settings), LOADED.settings.tracking.model_name)
    aliases = registry.aliases()
    events = registry.history()
    versions = pd.DataFrame(
        [
            {
                "version": int(mv.version),
                "aliases": ", ".join(sorted(aliases.get(str(mv.version), []))),
                "vectorizer": card.vectorizer,
                "P@1": card.headline("precision_at_1"),
                "F1@3": card.headline("f1_at_3"),
                "R@5": card.headline("recall_at_5"),
                "gate": gate_label(card, mv.version, events),
                "run": mv.run_id,
            }
            for mv, card in ((mv, read_card(registry.client, mv)) for mv in registry.versions())
        ]
    )
    history = pd.DataFrame(
        [
            {"at": e.at, "action": e.action, "from": e.previous or "", "to": e.version, "by": e.by, "reason": e.reason}
            for e in events
        ]
    )
    return versions, history


def registry_page() -> None:
    st.header("Model registry: stackoverflow-tagger")
    try:
        versions, history = registry_tables()
    except Exception as exc:  # the page explains instead of showing a traceback
        st.error(f"Cannot read the registry ({type(exc).__name__}: {exc}). Is MLFLOW_TRACKING_URI right?")
        return
    # st.table, not st.dataframe: small tables whose text is in the page (readable, searchable, testable).
    st.table(versions.set_index("version"))
    st.subheader("Promotion history")
    if history.empty:
        st.info("No champion yet: run `make promote`.")
    else:
        st.table(history.set_index("at"))


def monitoring_page() -> None:
    st.header("Drift monitoring")
    try:
        found = latest_summary(SETTINGS.reports_dir)
    except SummaryError as exc:
        st.error(f"The newest drift report cannot be read: {exc}")
        return
    if found is None:
        st.info(f"No drift report under {SETTINGS.reports_dir} yet: run `make drift`.")
        return
    folder, summary = found
    months = pd.DataFrame(summary.month_rows())
    st.caption(f"Latest job: {folder.name} · worst severity: **{summary.worst}**")
    if summary.baselines:
        lines = [f"- **{family}**: {words}" for family, words in summary.baselines.items()]
        lines += [f"- note: {note}" for note in summary.notes]
        st.markdown("Each family of statistics is compared with:\n" + "\n".join(lines))
    st.subheader("Severity per month")
    table = months[["month", "n", "severity", "reasons"]].assign(reasons=months["reasons"].map("; ".join))
    st.table(table.set_index("month"))
    st.subheader("Drift statistics over time")
    for group in (
        ["embedding_drift_auc", "centroid_cosine_distance", "pca_wasserstein_max"],
        ["tag_psi", "top_tag_js", "no_tag_share"],
        ["precision_at_1", "recall_at_5", "f1_at_3", "tag_coverage"],
    ):
        present = [c for c in group if c in months.columns]
        if present:
            st.line_chart(months.set_index("month")[present])
    st.subheader("Evidently reports")
    run_id = summary.mlflow_run_id
    for month in months["month"]:
        line = f"- {month}: `{folder / (month + '.html')}`"
        if run_id:
            line += f" · [in MLflow]({SETTINGS.mlflow_ui_url}/#/experiments/{summary.mlflow_experiment_id or ''}"
            line += f"/runs/{run_id}/artifacts/reports/{month}.html)"
        st.markdown(line)
    chosen = st.selectbox("Open a report here", list(months["month"]), index=len(months) - 1)
    path = folder / f"{chosen}.html"
    if path.is_file():
        st.download_button(f"Download {chosen}.html", path.read_bytes(), file_name=path.name, mime="text/html")
        if st.toggle("Show the report inline (large)"):
            st.components.v1.html(path.read_text(), height=900, scrolling=True)


def main() -> None:
    st.set_page_config(page_title="sotag", page_icon="🏷️", layout="wide")
    pages = [
        st.Page(ask_page, title="Ask", url_path="ask", default=True),
        st.Page(registry_page, title="Registry", url_path="registry"),
        st.Page(monitoring_page, title="Monitoring", url_path="monitoring"),
    ]
    st.navigation(pages).run()


main()
