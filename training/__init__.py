"""Train, compare, evaluate, register, promote and roll back tag models."""
