"""The approvals inbox: human tasks opened by ``human_task`` nodes, decided by people.

``store`` holds the SQL, ``forms`` checks submitted form data, ``links`` signs the
one-click links of e-mail notices, and ``service`` (:class:`HumanTasks`) is what the
node (``ctx.services["tasks"]``) and the ``/api/v1/tasks`` routes call.
"""
