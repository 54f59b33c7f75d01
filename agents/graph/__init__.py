"""Graph stage: moments become graph deltas on graph.updates, which a sink MERGEs into Neo4j."""
