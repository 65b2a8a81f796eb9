"""Frames to tracked detections: the freshest-frame batcher and the one inference thread."""
