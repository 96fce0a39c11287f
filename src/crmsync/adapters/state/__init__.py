"""State store adapters: in memory (the fake), SQLite (embedded default) and PostgreSQL."""
