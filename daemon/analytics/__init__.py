"""Tracked detections to events: zone and line rules, and the object lifecycle."""
