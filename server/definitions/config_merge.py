"""A node's effective config: seed aliases and ``config.custom`` folded into canonical keys.

The seed format lets node-type settings sit under ``config.custom`` and accepts
``rules``/``to`` for ``decision_rules``/``email_to``. Validation, the model and the engine
all work on the *effective* config; :class:`MergedConfig` also remembers where each key
really was, so problems point at the key as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from processors.base import Processor


@dataclass(frozen=True)
class MergeProblem:
    """A conflict found while merging (e.g. alias and canonical key both given)."""

    path: tuple[str, ...]  # relative to the config
    message: str
    is_error: bool = True


@dataclass(frozen=True)
class MergedConfig:
    """The effective config, each key's source path (relative to config), and conflicts."""

    config: dict[str, Any]
    sources: dict[str, tuple[str, ...]]
    problems: tuple[MergeProblem, ...] = field(default=())
    #: keys written directly in config (not custom) that the type does not know
    unknown_keys: tuple[str, ...] = field(default=())


def merge_config(raw: object, processor: Processor | None) -> MergedConfig:
    """Fold aliases and ``custom`` into canonical keys; ``config``'s own keys win.

    ``None`` values mean "not set" and are dropped. Never raises; anything that is not an
    object yields an empty config (the schema reports the wrong type).
    """
    if not isinstance(raw, Mapping):
        return MergedConfig({}, {})
    aliases = dict(processor.config_aliases) if processor else {}
    known = processor.known_config_keys() if processor else frozenset()
    problems: list[MergeProblem] = []
    config: dict[str, Any] = {}
    sources: dict[str, tuple[str, ...]] = {}

    own = _canonical_level(raw, aliases, (), problems, skip=("custom",))
    custom = raw.get("custom")
    if isinstance(custom, Mapping):
        for key, (value, path) in _canonical_level(custom, aliases, ("custom",), problems).items():
            if key in own:
                written = "/".join(own[key][1])
                problems.append(
                    MergeProblem(
                        path,
                        f"'{key}' is set both in config.custom and as config.{written}; "
                        f"config.{written} is used — remove one",
                        is_error=False,
                    )
                )
                continue
            config[key], sources[key] = value, path
    for key, (value, path) in own.items():
        config[key], sources[key] = value, path
    unknown = tuple(key for key in own if processor and key not in known)
    return MergedConfig(config, sources, tuple(problems), unknown)


def _canonical_level(
    level: Mapping[str, Any],
    aliases: Mapping[str, str],
    prefix: tuple[str, ...],
    problems: list[MergeProblem],
    skip: tuple[str, ...] = (),
) -> dict[str, tuple[Any, tuple[str, ...]]]:
    result: dict[str, tuple[Any, tuple[str, ...]]] = {}
    for key, value in level.items():
        if not isinstance(key, str) or key in skip or value is None:
            continue
        canonical = aliases.get(key, key)
        path = (*prefix, key)
        if canonical in result:
            first = result[canonical][1][-1]
            problems.append(
                MergeProblem(
                    path,
                    f"both '{first}' and '{key}' are given; they mean the same "
                    f"('{canonical}') — keep only one",
                )
            )
            continue
        result[canonical] = (value, path)
    return result
