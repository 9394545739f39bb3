"""Shared fixtures of the reliability tests (each module keeps its own kernel launcher)."""
