"""Contract tests: the same behaviour asked of every transport."""
