"""Cameras in: per camera a supervisor state machine running fresh GStreamer pipelines."""
