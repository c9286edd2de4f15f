"""Stored secrets (SPEC §8): encrypted at rest, resolved as ``${secrets.NAME}`` only when
a node runs, and replaced by ``***`` wherever a value would otherwise be shown.

* :mod:`.store` — the ``secrets`` table (names, ciphertexts, who changed them when);
* :mod:`.vault` — :class:`SecretsVault`, the service that encrypts, decrypts and caches;
* :mod:`.redaction` — replacing known values by ``***`` in data, messages and log lines.
"""
