"""The HTTP API: a FastAPI app served as a Ray Serve ingress deployment.

:func:`trendflow.api.app.build_app` is the Serve entry point (``serve_config.yaml``);
:func:`trendflow.api.app.create_app` builds the plain FastAPI app (tests, ``/process/sync``).
"""
