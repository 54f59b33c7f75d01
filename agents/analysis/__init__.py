"""Analysis stage: send each chunk's keyframes to models served by Triton."""
