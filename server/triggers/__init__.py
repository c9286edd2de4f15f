"""Cron and webhook triggers: what starts executions without anyone calling ``execute``.

``service`` puts the parts together; ``live`` says which triggers are live (the newest
active version's), ``sync`` keeps a process in step with the registry, ``schedules``
fires cron triggers exactly once across processes (``cron`` computes the times,
``misfire`` decides about missed ones, ``fires`` is their table), and ``hooks`` serves
``POST /api/v1/hooks/{path}``. See docs/triggers.md.
"""
