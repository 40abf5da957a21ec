"""Ray runtime: scheduler, Segmenter and component actors.

Only this package (and the API) imports Ray.
"""
