"""Running it: the composition root, the cameras it runs, HTTP, metrics, systemd, logs, the CLI."""
