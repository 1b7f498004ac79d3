"""Fixtures that start the sandbox platform server (filled in by the sandbox work)."""
