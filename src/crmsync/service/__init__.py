"""Use cases over the ports: evaluation streams, the sync cycle, archiving, reports."""
