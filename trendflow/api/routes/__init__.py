"""Route modules of the HTTP API; each exposes ``router``."""
