"""Outbound HTTP for ``api`` and ``webhook`` nodes (SPEC §8 "Outbound calls").

``policy`` decides which destinations may be called (checked after DNS resolution, on
every connection); ``client`` is the shared HTTP service nodes use through
``ctx.services["http"]``; ``errors`` says what went wrong and whether a retry may help.
"""
