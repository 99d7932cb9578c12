"""Integrity: which files make a model, their hashes, version locks, safe opens."""
