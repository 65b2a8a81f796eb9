"""The vocabulary every stage shares: frames, detections, events, redaction, backoff, image crops."""
