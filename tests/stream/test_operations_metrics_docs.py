"""docs/operations.md's metric table lists exactly the metrics the code registers, each with its type.

The registered metrics are read from the code at run time, in a fresh interpreter (so nothing a
test registered counts): it imports every module of the package (the folders setup.py maps, as
the wheel holds them), then reads prometheus_client's default registry (the workers' and the
trainer's metrics), `streamrec serve`'s own registry (stream/api/metrics.py) and the families its
scrape-time `LiveCollector` yields. A `Collector` class of the package that this test does not know
fails it, since only a run of its `collect()` says which names it exposes.

Names are compared as Prometheus exposes them: a counter `x` as `x_total`, an info `x` as `x_info`.
Run this file with python to print what the code registers (name, type).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "operations.md"
TABLE_HEADER = "| metric | type | labels | stage | meaning |"
PACKAGES = ("streamrec", "streamrec.config", "streamrec.stream", "streamrec.state", "streamrec.models")
"""setup.py's PACKAGE_DIRS: every import package the wheel installs."""
KNOWN_COLLECTORS = {
    "streamrec.stream.api.metrics.LiveCollector": "yielded below from a real instance",
}


def _exposed(name: str, kind: str) -> str:
    return {"counter": f"{name}_total", "info": f"{name}_info"}.get(kind, name)


def registered() -> dict[str, str]:
    """Exposed metric name -> type, for every `streamrec_*` metric the package registers."""
    for top in PACKAGES:
        package = importlib.import_module(top)
        for module in pkgutil.walk_packages(package.__path__, f"{top}."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)

    from prometheus_client import REGISTRY
    from prometheus_client.registry import Collector

    from streamrec.config.settings import ApiSettings
    from streamrec.stream.api import metrics as api_metrics
    from streamrec.stream.api.live import LiveStats

    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    unknown = sorted({f"{c.__module__}.{c.__qualname__}" for c in subclasses(Collector)
                      if c.__module__.startswith("streamrec.")} - set(KNOWN_COLLECTORS))
    if unknown:
        raise SystemExit("Collector classes this test does not run (add them to KNOWN_COLLECTORS and collect them): "
                         f"{unknown}")
    families = [*REGISTRY.collect(), *api_metrics.REGISTRY.collect(),
                *api_metrics.LiveCollector(LiveStats(ApiSettings()), dict).collect()]
    out: dict[str, str] = {}
    for family in families:
        if family.name.startswith("streamrec_"):
            exposed = _exposed(family.name, family.type)
            assert out.get(exposed, family.type) == family.type, (f"{exposed} registered as {out[exposed]} and "
                                                                  f"{family.type}")
            out[exposed] = family.type
    return out


def documented() -> dict[str, str]:
    """Metric name -> type, from the rows of docs/operations.md's metric table."""
    text = DOC.read_text()
    assert text.count(TABLE_HEADER) == 1, f"{DOC} should hold one table headed {TABLE_HEADER!r}"
    rows: dict[str, str] = {}
    for line in text[text.index(TABLE_HEADER):].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        name = re.fullmatch(r"`(streamrec_\w+)`", cells[0])
        assert name is not None, f"{DOC}: a metric row's first cell is not one `streamrec_...` name: {line!r}"
        assert name.group(1) not in rows, f"{DOC} lists {name.group(1)} twice"
        rows[name.group(1)] = cells[1]
    return rows


def test_the_operations_metric_table_lists_every_registered_metric_with_its_type() -> None:
    result = subprocess.run([sys.executable, __file__], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    code = json.loads(result.stdout)
    docs = documented()
    assert len(code) > 40, f"only {len(code)} metrics found: the package's modules were not all imported?"
    assert sorted(set(code) - set(docs)) == [], f"registered but missing from {DOC.name}'s metric table"
    assert sorted(set(docs) - set(code)) == [], f"in {DOC.name}'s metric table but not registered by the code"
    differing = {name: f"documented {kind}, registered {code[name]}"
                 for name, kind in docs.items() if code[name] != kind}
    assert differing == {}, f"{DOC.name}'s metric table gives other types than the code"


if __name__ == "__main__":
    print(json.dumps(registered(), indent=1, sort_keys=True))
