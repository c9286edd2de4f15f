"""Outside systems that node types use at run time, one service per module.

``databases`` runs statements on the named ``[connections.NAME]``; ``mail`` sends through
the named ``[smtp.NAME]`` accounts. ``server.app`` builds one instance of each and hands
it to processors through ``NodeContext.services``; each has an ``aclose()`` that the app
calls at shutdown. Their errors are :class:`~server.errors.FlowyardError` subclasses
that carry ``retryable``, so a processor can turn them into a node failure directly.
"""
