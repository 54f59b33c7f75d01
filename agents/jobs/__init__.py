"""Jobs stage: per-video job state materialised from the pipeline's topics (docs/operations.md)."""
