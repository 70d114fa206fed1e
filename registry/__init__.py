"""The registry as sotag uses it: the lifecycle layer between the stages and the model.

* `store`: open the registry from the tracking settings; aliases, the append-only history, locking.
* `gate`: the promotion gate (re-scoring both models on one window, the floor, the comparison).
* `lifecycle`: promote / rollback / status.
* `resolve`: `models:/name@alias` (or a version, a run, a folder) to a pinned, loaded model.
* `publish`: log the four artifacts as the sotag pyfunc and register the version as @challenger.

It imports `tagger` and MLflow, never a stage (`training`, `serving`, `monitoring`).
"""
