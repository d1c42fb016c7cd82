"""The stages that hand off through files: embed (catalogue -> embeddings) and index (embeddings -> index)."""
