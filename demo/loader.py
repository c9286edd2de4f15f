"""Loads the example definitions into a fresh demo server."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from server.errors import FlowyardError
from server.registry.service import WorkflowRegistry

log = logging.getLogger("flowyard.demo")

DEFINITIONS_DIR = Path(__file__).resolve().parents[1] / "definitions"
NOT_DEFINITIONS = {"schema.json"}


def definition_files(directory: Path = DEFINITIONS_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.json") if p.name not in NOT_DEFINITIONS)


async def load_definitions(
    registry: WorkflowRegistry, directory: Path = DEFINITIONS_DIR
) -> list[str]:
    """Publish every definition file; a bad file is logged and skipped, not fatal."""
    loaded = []
    for path in definition_files(directory):
        try:
            published = await registry.create(json.loads(path.read_text()), actor="demo")
        except (FlowyardError, ValueError) as error:
            log.error(
                "demo definition rejected",
                extra={"action": "demo.load_failed", "file": path.name, "error": str(error)},
            )
            continue
        loaded.append(published.document["id"])
    log.info("demo definitions loaded", extra={"action": "demo.loaded", "count": len(loaded)})
    return loaded
