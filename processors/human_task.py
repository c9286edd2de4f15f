"""``human_task``: wait for a person to decide, via the approvals inbox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from processors.base import (
    DURATION_SCHEMA,
    TEMPLATE_STRING,
    ConfigCheck,
    JSONSchema,
    Processor,
    rel,
)

DEFAULT_OUTCOMES = ("approved", "rejected")
FIELD_TYPES = ("text", "textarea", "number", "boolean", "select", "date")
FIXED_OUTPUT = frozenset({"status", "comment", "completed_by", "completed_at"})

FORM_FIELD_SCHEMA: JSONSchema = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "description": "key in the task's output"},
        "label": {"type": "string"},
        "type": {"enum": list(FIELD_TYPES), "description": "input kind (default text)"},
        "options": {"type": "array", "description": "choices of a select field"},
        "required": {"type": "boolean"},
    },
}


class HumanTaskProcessor(Processor):
    """Creates an approval task and waits durably until a permitted person completes it."""

    type_name: ClassVar[str] = "human_task"
    description: ClassVar[str] = "Waits for a person to complete a task in the approvals inbox."
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "assignee": {"type": "string", "description": "user who should decide"},
            "candidate_roles": {
                "type": "array",
                "items": {"type": "string"},
                "description": "roles whose members may decide",
            },
            "title": {**TEMPLATE_STRING, "description": "task title; templated"},
            "description": {**TEMPLATE_STRING, "description": "task description; templated"},
            "form": {"type": "array", "items": FORM_FIELD_SCHEMA, "description": "form fields"},
            "outcomes": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
                "uniqueItems": True,
                "description": 'possible decisions (default ["approved", "rejected"])',
            },
            "required_approvals": {
                "type": "integer",
                "minimum": 1,
                "description": "distinct people who must choose the first outcome",
            },
            "allow_self_approval": {
                "type": "boolean",
                "description": "false: whoever started the execution cannot decide (four eyes)",
            },
            "due_date": {**DURATION_SCHEMA, "description": "how long the task may stay open"},
            "on_timeout": {
                "type": "string",
                "description": "when due: fail, escalate (to escalate_to) or an outcome to apply",
            },
            "escalate_to": {"type": "string", "description": "user or role:<name> to escalate to"},
            "notify": {
                "type": ["boolean", "object"],
                "description": "email the assignee a notice with signed one-click links",
            },
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        if config.get("assignee") is None and not config.get("candidate_roles"):
            check.warning(
                "",
                "no 'assignee' or 'candidate_roles': only managers and admins can complete "
                "this task",
            )
        if "due_date" in config:
            check.duration("due_date", config["due_date"])
        outcomes = config.get("outcomes")
        outcome_list = outcomes if isinstance(outcomes, list) else list(DEFAULT_OUTCOMES)
        self._check_timeout_policy(config, outcome_list, check)
        form = config.get("form")
        if isinstance(form, list):
            self._check_form(form, check)
        for key in ("title", "description", "assignee"):
            if key in config:
                check.template(key, config[key])

    def _check_timeout_policy(
        self, config: Mapping[str, Any], outcomes: list[Any], check: ConfigCheck
    ) -> None:
        policy = config.get("on_timeout")
        if not isinstance(policy, str):
            return
        allowed = ["fail", "escalate", *(o for o in outcomes if isinstance(o, str))]
        if policy not in allowed:
            check.error("on_timeout", f"{policy!r} is not one of: {', '.join(allowed)}")
        if policy == "escalate" and not config.get("escalate_to"):
            check.error("on_timeout", "on_timeout 'escalate' needs 'escalate_to' (who takes over)")
        if config.get("due_date") is None:
            check.warning("on_timeout", "on_timeout has no effect without 'due_date'")

    def _check_form(self, form: list[Any], check: ConfigCheck) -> None:
        seen: set[str] = set()
        for index, field in enumerate(form):
            if not isinstance(field, dict):
                continue
            name = field.get("name")
            if isinstance(name, str):
                if name in seen:
                    check.error(rel("form", index, "name"), f"form field {name!r} appears twice")
                seen.add(name)
            if field.get("type") == "select" and not field.get("options"):
                check.error(rel("form", index), "a select field needs a non-empty 'options' list")

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        form = config.get("form")
        if not isinstance(form, list):
            return None  # completion data may carry any keys when no form declares them
        names = {f["name"] for f in form if isinstance(f, dict) and isinstance(f.get("name"), str)}
        return FIXED_OUTPUT | names
