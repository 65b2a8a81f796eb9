"""The shipped documentation, example configuration and event schema stay current."""
