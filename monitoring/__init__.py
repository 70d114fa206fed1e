"""Monitoring: monthly drift reports (Evidently over SBERT embeddings, prediction and text statistics)."""
