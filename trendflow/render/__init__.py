"""The written analysis: brief + recommendations, LLM gateway, prompts, validator, cache.

See docs/render.md.
"""
