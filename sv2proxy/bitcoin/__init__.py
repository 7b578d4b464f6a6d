"""Pure Bitcoin consensus helpers: hashing, merkle trees, targets (no I/O, no reactor)."""
