"""Archive store adapters: a local directory, PostgreSQL and S3-compatible object storage."""
