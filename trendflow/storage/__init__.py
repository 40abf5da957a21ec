"""Result stores: local disk and S3-compatible buckets behind one protocol."""
