"""Built-in starting data (``seed.json``) and its loader."""
