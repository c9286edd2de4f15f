"""Node types run for real: HTTP peers, SMTP sinks and databases on 127.0.0.1."""
