"""Adapters: the ports' implementations, grouped by the port they serve.

``crm/`` (the local CRM and the real CRMs), ``state/`` (memory, SQLite, PostgreSQL) and
``archive/`` (local directory, PostgreSQL, S3). An adapter imports the domain, the ports,
the errors and the shared helpers beside this file, never settings, the CLI, the worker or
an adapter of another port.
"""
