"""Embedding stage: describe each analysed moment, embed it with Triton, upsert into Milvus."""
