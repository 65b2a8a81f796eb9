"""Inference: batching, tracking, classifiers, model formats and detector threads."""
