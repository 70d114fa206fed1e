"""sotag: StackOverflow tag suggestion run with MLflow.

One import namespace: the command (`sotag.cli`) and its settings (`sotag.settings`) live here; the repository's
top-level folders install beneath it (`tagger/` as `sotag.tagger`, `data/` as `sotag.data`, `training/` as
`sotag.training`, ...: pyproject.toml, package-dir).
"""
