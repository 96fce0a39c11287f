"""Shared pytest setup for the whole suite.

This file's presence puts ``tests/`` on ``sys.path`` (pytest's default ``prepend`` import
mode), so test modules can import test-only helpers such as ``reference_calendar``.
"""
