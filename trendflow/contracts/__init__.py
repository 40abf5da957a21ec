"""Data contracts: run identity, config hash, manifest, NPZ artifacts, validation."""
