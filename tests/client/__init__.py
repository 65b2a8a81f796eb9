"""Clients: `argusd events` and the consumer-group reader."""
