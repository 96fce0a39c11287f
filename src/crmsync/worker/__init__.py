"""The long-running worker: its schedule and its HTTP server for health, readiness and metrics."""
