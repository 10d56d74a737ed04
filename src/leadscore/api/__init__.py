"""The HTTP server: Segment-compatible intake (``/v1/...``), the REST API (``/api/...``) and
health, served by ``leadscore serve``. :func:`leadscore.api.app.create_app` builds it."""
