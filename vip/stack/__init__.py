"""Local stack manager: starts real Kafka, Neo4j, Milvus Lite and Triton on loopback."""
