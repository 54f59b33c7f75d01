"""Adapters and helpers that more than one agent stage uses."""
