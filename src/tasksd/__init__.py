"""tasksd: a self-hosted server implementing the Google Cloud Tasks API."""

__version__ = "0.1.0"
