"""Helpers for testing modelyard and its backends: shared conformance suites and
launchers of the real services they run against. Imported only by tests."""
