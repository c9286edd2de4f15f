"""Flowyard: a durable workflow-engine server."""

__version__ = "0.1.0"
