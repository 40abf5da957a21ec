"""The written analysis: brief + recommendations, LLM gateway, prompts, validator, cache.

See docs/render.md.
"""

# The warning of a run whose render failed (the run ends ``ok``): ``render failed: <code>``.
RENDER_FAILED = "render failed: "
