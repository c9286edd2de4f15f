"""Who may do what: identities (users, API keys, JWTs), permissions, audit (SPEC §8)."""
