"""Entities, ids, errors and the clock. No I/O; imports nothing else of modelyard."""
