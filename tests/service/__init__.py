"""The service: the daemon end to end, its operations surface (HTTP, metrics, systemd, logs)."""
