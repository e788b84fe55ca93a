"""Data sources by name. Each module of this package is one source."""
