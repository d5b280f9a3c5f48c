"""Litestar route handlers: HubSpot's paths (v3 and dated) and the ``/_sandbox/`` inspection API."""
