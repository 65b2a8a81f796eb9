"""For consumers of the events: a de-duplicating consumer and the `argusd events` commands."""
