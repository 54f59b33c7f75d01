"""Chunking stage: decode an uploaded video with PyAV and cut it into keyframe-aligned chunks."""
