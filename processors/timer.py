"""``timer``: wait durably for a duration, until a time, or until a cron schedule fires."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from processors.base import (
    DURATION_SCHEMA,
    TEMPLATE_STRING,
    ConfigCheck,
    JSONSchema,
    Processor,
    require_one_of,
)


class TimerProcessor(Processor):
    """Waits; the wait is a stored timer, so it survives restarts."""

    type_name: ClassVar[str] = "timer"
    description: ClassVar[str] = (
        "Waits durably: a duration, until a timestamp, or until a cron schedule's next fire."
    )
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "duration": {**DURATION_SCHEMA, "description": "how long to wait"},
            "until": {
                **TEMPLATE_STRING,
                "description": "ISO-8601 timestamp (or a template giving one) to wait for",
            },
            "schedule": {
                "type": "string",
                "description": "cron (5 fields, or 6 with seconds first): wait for its next fire",
            },
            "timezone": {"type": "string", "description": "IANA zone of `schedule` (default UTC)"},
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        kind = require_one_of(config, ("duration", "until", "schedule"), check, what="a timer")
        if kind == "duration":
            check.duration("duration", config["duration"])
        elif kind == "until":
            until = config["until"]
            if isinstance(until, str) and "${" not in until and not _is_timestamp(until):
                check.error(
                    "until",
                    f"{until!r} is not an ISO-8601 timestamp; write e.g. 2030-01-31T09:00:00Z",
                )
            check.template("until", until)
        elif kind == "schedule":
            check.cron("schedule", config["schedule"])
        if "timezone" in config and isinstance(config["timezone"], str):
            check.timezone("timezone", config["timezone"])

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({"waited_seconds", "fired_at"})


def _is_timestamp(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True
