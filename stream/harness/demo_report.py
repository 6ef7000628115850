"""The demo's end report: the neural model next to the kNN and its frozen twin, paired intervals, versions, swaps.

Quality and latency come from the replay report (stream/harness/report.py: every scorer judged
on the same clicks); versions announced, hot swaps and their delays and the trainer's figures
come from the demo's `streamrec serve` (/stats: the same figures the dashboard shows), so the
report and the dashboard cannot disagree. Printed, and written as demo.md and demo.json next to
report.md.
"""

from __future__ import annotations

import json
import statistics
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from streamrec.stream.harness.report import ReplayReport, latency_verdict

_STATS_TIMEOUT_S = 10.0


def fetch_stats(api_url: str) -> dict[str, Any]:
    """The API's /stats; {} when it does not answer (the report then says so)."""
    try:
        with urllib.request.urlopen(f"{api_url}/stats", timeout=_STATS_TIMEOUT_S) as response:  # noqa: S310 (our own API)
            return dict(json.loads(response.read()))
    except (OSError, ValueError):
        return {}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def demo_figures(report: ReplayReport, roles: Mapping[str, str], stats: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the demo's end report shows, JSON-ready."""
    started = report.started_at
    scorers = []
    for s in report.scorers:
        verdict = latency_verdict(report, s)
        scorers.append({
            "role": roles.get(s.scorer, "other"), "scorer": s.scorer, "HR@20": s.metrics.get("HR@20"),
            "MRR@20": s.metrics.get("MRR@20"), "p50_ms": s.latency.p50_ms, "p99_ms": s.latency.p99_ms,
            "answered": s.recommended, "judged": s.judged, "missing": s.missing,
            "versions_served": s.model_versions_seen,
            "answers_trained_on_later_clicks": s.answers_trained_on_later_clicks,
            "latency_is": "QUEUEING" if "QUEUEING" in verdict else "service", "verdict": verdict,
        })
    paired = [p.to_dict() for p in report.paired]
    swaps = [w for w in stats.get("swaps", []) if w.get("delay_s") is not None]
    delays = [float(w["delay_s"]) for w in swaps]
    updates = stats.get("model_updates", [])
    examples_per_s = None
    if len(updates) >= 2 and updates[-1]["published_at"] > updates[0]["published_at"]:
        examples_per_s = ((updates[-1]["examples_trained"] - updates[0]["examples_trained"])
                          / (updates[-1]["published_at"] - updates[0]["published_at"]))
    trainer: Mapping[str, Any] = next(
        (w for w in stats.get("workers", {}).values() if w.get("trainer_examples_total") is not None), {})
    return {
        "started_at": started, "rate_eps": report.rate_eps, "judged_clicks": report.counts.sent,
        "warm_clicks": report.counts.warm_sent, "scorers": scorers, "paired": paired,
        "versions_announced": len(updates), "swaps": len(swaps),
        "swap_delay_s_median": _median(delays), "swap_delay_s_max": max(delays) if delays else None,
        "trainer_examples_per_s": examples_per_s, "trainer_examples_skipped": trainer.get("trainer_skipped"),
        "trainer_loss": trainer.get("trainer_loss"), "trainer_steps": trainer.get("trainer_steps_total"),
        "api_answered": bool(stats),
    }


def _f(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


_ORDER = {"continual": 0, "frozen twin": 1, "shadow": 2}


def _rows(figures: Mapping[str, Any]) -> list[list[str]]:
    ordered = sorted(figures["scorers"], key=lambda s: (_ORDER.get(s["role"], 9), s["scorer"]))
    return [[s["scorer"], s["role"], _f(s["HR@20"], 4), _f(s["MRR@20"], 4), _f(s["p50_ms"], 0), _f(s["p99_ms"], 0),
             f"{s['versions_served']:,}", s["latency_is"]] for s in ordered]


_HEAD = ["scorer", "role", "HR@20", "MRR@20", "p50 ms", "p99 ms", "versions", "latency"]


def _paired_lines(figures: Mapping[str, Any]) -> list[str]:
    if not figures["paired"]:
        return ["paired intervals: none in this replay report"]
    lines = []
    for p in figures["paired"]:
        low, high = p["ci95"]
        verdict = p.get("verdict") or ("tie" if low <= 0 <= high
                                       else (f"{p['a']} beats {p['b']}" if low > 0 else f"{p['b']} beats {p['a']}"))
        lines.append(f"{p['a']} - {p['b']} {p['metric']}: {p['diff']:+.4f} [{low:+.4f}, {high:+.4f}] "
                     f"({p['predictions']:,} clicks, {p['groups']:,} sessions): {verdict}")
    return lines


def _facts(figures: Mapping[str, Any]) -> list[str]:
    return [
        f"judged {figures['judged_clicks']:,} clicks at {_f(figures['rate_eps'], 0)} clicks/s after "
        f"{figures['warm_clicks']:,} warm-up clicks (unjudged; the starting model trained on them)",
        f"versions announced by the trainer: {figures['versions_announced']}; hot swaps seen: {figures['swaps']} "
        f"(announcement -> first answer: median {_f(figures['swap_delay_s_median'], 2)} s, max "
        f"{_f(figures['swap_delay_s_max'], 2)} s)",
        f"trainer: {_f(figures['trainer_examples_per_s'], 1)} examples/s between its first and last version; "
        f"skipped examples {_f(figures['trainer_examples_skipped'], 0)}; last loss {_f(figures['trainer_loss'], 3)}",
    ] + ([] if figures["api_answered"]
         else ["(the API did not answer /stats: versions and trainer figures are missing)"])


def print_demo_report(figures: Mapping[str, Any], console: Console) -> None:
    table = Table(title="neural model (continual) vs its frozen twin vs the kNN, same clicks")
    for column in _HEAD:
        table.add_column(column, justify="left" if column in ("role", "scorer", "latency") else "right", no_wrap=True)
    for row in _rows(figures):
        table.add_row(*row)
    console.print(table)
    for line in _facts(figures):  # the paired intervals are print_report's table just above (and in demo.md)
        console.print(line)


def write_demo_report(figures: Mapping[str, Any], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    md = ["# streamrec demo", "", "| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD),
          *("| " + " | ".join(row) + " |" for row in _rows(figures)), "",
          "## Paired differences (95% bootstrap interval over sessions)", "",
          *(f"- {line}" for line in _paired_lines(figures)), "", *(f"- {line}" for line in _facts(figures)), "",
          "Per-scorer details, timeline and latency plots: [report.md](report.md).", ""]
    paths = [folder / "demo.md", folder / "demo.json"]
    paths[0].write_text("\n".join(md))
    paths[1].write_text(json.dumps(figures, indent=2, default=str))
    return paths
