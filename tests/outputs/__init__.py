"""Outputs: the Redis publisher, its spool, snapshots and captions."""
