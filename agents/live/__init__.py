"""Live stage: live.segments → chunks (and the feed's Video node on graph.updates)."""
