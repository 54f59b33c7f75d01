"""Adapters between the analysis stage and the models served by Triton.

Each module wraps one capability: it prepares that model's input bytes, calls it through
:class:`agents.shared.triton_client.TritonClient`, and parses its JSON answer into frozen
dataclasses.
"""
