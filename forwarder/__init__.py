"""Self-hosted server-side conversions event forwarder for HubSpot."""

__version__ = "0.1.0"
