"""Streams outbound message statuses into Klaviyo."""

__version__ = "0.1.0"
