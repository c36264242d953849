"""The web monitor and HTTP API of a Runtime (``routilux serve``, ``Runtime.serve_http``).

Needs the ``web`` extra (``pip install 'routilux[web]'``: Starlette, uvicorn,
prometheus-client). ``import routilux`` never imports this package.
"""
