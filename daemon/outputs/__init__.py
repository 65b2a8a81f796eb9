"""Events out: routing, Redis publishing with its disk spool, snapshots, captions, the live preview."""
