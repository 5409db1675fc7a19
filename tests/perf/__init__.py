"""The benchmark of issue #7 (`scripts/bench`); not part of the pytest suite."""
