"""Side-by-side table of Flowyard vs DBOS from bench/run.sh's raw results, against the
issue's targets. Each figure is the median over the rounds (each round ran both, one
after the other, so drift of the machine hits both sides alike); the spread is shown.

    .venv/bin/python bench/compare.py bench/results/raw
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

TARGET_RATIO = 3.0
TARGET_MARGINAL_MS = 0.5
TARGET_MEMORY_MB = 100.0


def load(raw: Path, prefix: str) -> list[dict[str, Any]]:
    files = sorted(raw.glob(f"{prefix}-[0-9]*.json"), key=lambda p: int(p.stem.split("-")[-1]))
    return [json.loads(f.read_text()) for f in files]


def med(runs: list[dict[str, Any]], phase: str, key: str) -> float:
    return statistics.median(r[phase][key] for r in runs)


def spread(runs: list[dict[str, Any]], phase: str, key: str, fmt: str = ".1f") -> str:
    values = [r[phase][key] for r in runs]
    if len(values) < 2:
        return ""
    return f"[{min(values):{fmt}}–{max(values):{fmt}}]"


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of every numeric field, phase by phase, plus the rounds themselves."""
    out: dict[str, Any] = {"versions": runs[0].get("versions"), "rounds": len(runs)}
    for phase, value in runs[0].items():
        if isinstance(value, dict) and phase not in ("versions", "parameters", "sqlite"):
            out[phase] = {
                key: statistics.median(r[phase][key] for r in runs)
                if isinstance(v, int | float) and not isinstance(v, bool)
                else v
                for key, v in value.items()
            }
    out["parameters"] = runs[0].get("parameters")
    out["runs"] = runs
    return out


def main() -> None:
    raw = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "raw"
    engine_runs, dbos_runs = load(raw, "engine"), load(raw, "dbos")
    memory_file = raw / "engine-memory.json"
    memory = json.loads(memory_file.read_text())["memory"] if memory_file.exists() else None

    engine = aggregate(engine_runs)
    if memory:
        engine["memory"] = memory
    dbos = aggregate(dbos_runs)
    (RESULTS / "engine.json").write_text(json.dumps(engine, indent=2, default=str) + "\n")
    (RESULTS / "dbos.json").write_text(json.dumps(dbos, indent=2, default=str) + "\n")

    e_seq = med(engine_runs, "sequential", "executions_per_s")
    d_seq = med(dbos_runs, "sequential", "executions_per_s")
    e_con = med(engine_runs, "concurrent", "executions_per_s")
    d_con = med(dbos_runs, "concurrent", "executions_per_s")
    d_aseq = med(dbos_runs, "async_sequential", "executions_per_s")
    d_acon = med(dbos_runs, "async_concurrent", "executions_per_s")
    e_marg = med(engine_runs, "marginal", "marginal_ms_median")
    e_marg99 = med(engine_runs, "marginal", "marginal_ms_p99")
    e_gap = med(engine_runs, "marginal", "node_gap_ms_median")
    e_gap99 = med(engine_runs, "marginal", "node_gap_ms_p99")
    d_marg = med(dbos_runs, "marginal", "marginal_ms_median")
    d_marg99 = med(dbos_runs, "marginal", "marginal_ms_p99")
    n_con = engine_runs[0]["concurrent"]["executions"]

    def verdict(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    rows = [
        (
            "10-node chain, one after another (exec/s)",
            f"{e_seq:.1f} {spread(engine_runs, 'sequential', 'executions_per_s')}",
            f"{d_seq:.1f} {spread(dbos_runs, 'sequential', 'executions_per_s')}",
            f"{e_seq / d_seq:.2f}×",
            f"≥ {TARGET_RATIO:g}× DBOS ({TARGET_RATIO * d_seq:.0f}/s)",
            verdict(e_seq >= TARGET_RATIO * d_seq),
        ),
        (
            f"{n_con} started at once (exec/s)",
            f"{e_con:.1f} {spread(engine_runs, 'concurrent', 'executions_per_s')}",
            f"{d_con:.1f} {spread(dbos_runs, 'concurrent', 'executions_per_s')}",
            f"{e_con / d_con:.2f}×",
            f"≥ {TARGET_RATIO:g}× DBOS ({TARGET_RATIO * d_con:.0f}/s)",
            verdict(e_con >= TARGET_RATIO * d_con),
        ),
        (
            f"{n_con} at once ≥ one after another",
            f"{e_con:.1f} vs {e_seq:.1f}",
            "",
            f"{e_con / e_seq:.2f}×",
            "≥ 1×",
            verdict(e_con >= e_seq),
        ),
        (
            "marginal cost per node, median (ms)",
            f"{e_marg:.3f} {spread(engine_runs, 'marginal', 'marginal_ms_median', '.2f')}",
            f"{d_marg:.3f}",
            f"{e_marg / d_marg:.2f}× DBOS's",
            f"≤ {TARGET_MARGINAL_MS}",
            verdict(e_marg <= TARGET_MARGINAL_MS),
        ),
        (
            "marginal cost per node, p99 (ms)",
            f"{e_marg99:.3f}",
            f"{d_marg99:.3f}",
            "",
            "(reported)",
            "above 0.5" if e_marg99 > TARGET_MARGINAL_MS else "",
        ),
        (
            "node-to-node gap in node_runs, median / p99 (ms)",
            f"{e_gap:.3f} / {e_gap99:.3f}",
            "",
            "",
            "(cross-check)",
            "",
        ),
    ]
    if memory:
        rows.append(
            (
                f"{memory['waiting_executions']:,} executions waiting on 1 h timers (MB RSS added)",
                f"+{memory['rss_mb_added']:.1f}",
                "",
                f"{memory['kb_per_waiting_execution']:.2f} KB each",
                f"≤ {TARGET_MEMORY_MB:g}",
                verdict(memory["rss_mb_added"] <= TARGET_MEMORY_MB),
            )
        )
    rows.append(
        (
            "DBOS async workflow: one after another / at once (exec/s)",
            "",
            f"{d_aseq:.1f} / {d_acon:.1f}",
            "",
            "(reference)",
            "",
        )
    )

    header = ("metric", "Flowyard", "DBOS 3.4", "ratio", "target", "")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(
        "\nFlowyard engine vs DBOS Transact — SQLite WAL/NORMAL, "
        f"medians of {len(engine_runs)} round(s)"
        " [min–max over rounds]\n"
    )
    for row in [header, *rows]:
        print("  ".join(f"{c!s:<{w}}" for c, w in zip(row, widths, strict=True)).rstrip())
    summary = {
        "rounds": len(engine_runs),
        "engine": {
            "sequential_per_s": e_seq,
            "concurrent_per_s": e_con,
            "marginal_ms_median": e_marg,
            "marginal_ms_p99": e_marg99,
            "memory_mb_added": memory["rss_mb_added"] if memory else None,
        },
        "dbos": {
            "sequential_per_s": d_seq,
            "concurrent_per_s": d_con,
            "async_sequential_per_s": d_aseq,
            "async_concurrent_per_s": d_acon,
            "marginal_ms_median": d_marg,
            "marginal_ms_p99": d_marg99,
        },
        "ratios": {"sequential": e_seq / d_seq, "concurrent": e_con / d_con},
        "targets_met": {
            "sequential_3x": e_seq >= TARGET_RATIO * d_seq,
            "concurrent_3x": e_con >= TARGET_RATIO * d_con,
            "concurrent_ge_sequential": e_con >= e_seq,
            "marginal_median_le_0_5ms": e_marg <= TARGET_MARGINAL_MS,
            "memory_le_100mb": bool(memory and memory["rss_mb_added"] <= TARGET_MEMORY_MB),
        },
    }
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\nwritten bench/results/engine.json, dbos.json, summary.json")


if __name__ == "__main__":
    main()
