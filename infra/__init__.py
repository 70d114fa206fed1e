"""Shared infrastructure below the stages, beside the model: never logged with a model version.

* `tracking`: where runs and models are tracked (`TrackingSettings`), MLflow clients built from it, and the
  one function that makes a store current for MLflow's fluent API (training and drift runs only).
* `prediction_log`: the gateway's prediction log (schema, writer with spool, reader for monitoring).
* `spark`: Spark settings and session start-up.
* `scored`: the layout of `sotag score` output (staged, committed by renames, read back).
* `argtypes`: argparse value types and the settings flags shared by the sub-commands.
* `model_loading`: the one model-loading path (fetch from a store, then load and verify the local copy).
* `store_errors`: telling a store's outage from a thing that is not there.
* `drift_summary`: the drift job's `summary.json` schema, written by monitoring, read by the demo app.

The stages and the registry import it; `sotag.tagger` (the code each model version ships) never does.
"""
