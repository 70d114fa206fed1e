"""Serving: `mlflow models serve` from the registry, the gateway API, model fetch and legacy conversion."""
