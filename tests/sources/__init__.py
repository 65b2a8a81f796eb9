"""Camera sources: GStreamer decoding, supervision, reconnects and reloads."""
