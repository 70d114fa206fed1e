"""Infrastructure the stages share and the model does not ship: below every stage, the registry and `tagger`.

* `drift_summary`: the drift job's `summary.json` schema, written by monitoring, read by the demo app.

It imports no project package.
"""
