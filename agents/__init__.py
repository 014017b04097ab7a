"""Faust agents: one pipeline stage per module."""
