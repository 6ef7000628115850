"""`make bench-continual`: the graph model learning from the click stream while it serves, against a frozen twin.

One run, from a fresh clone (embedded broker, nothing else needed):

1. a warm-up checkpoint of the default preset is trained on the warm log only (early stopping on a
   validation tail of the warm log, never on the judged stream; capped at --train-seconds);
2. broker + worker (stateful stage + scoring stage serving that checkpoint and hot-swapping every
   published version: scorer `default+online`) + three shadow scoring stages in their own consumer
   groups on the same requests: the frozen twin (`default`, updates.follow = false, never swapped),
   the tables-only ablation (`default+tables`: never swapped, its head's tables learning the stream
   as the continual stage's do, updates.frozen_learn_tables) and the online kNN (`sknn`);
3. the warm log is replayed flat out, unjudged: first the sessions the warm-up model was fitted on
   (its tables hold them), then - with the trainer running, started from the warm-up checkpoint at
   the stream's end - the rest (the warm log's validation tail), which the trainer learns as the
   offline bench's learner does (bench/continual_offline.py); the trainer then stops (publishing);
4. the trainer resumes (from its last version, at its trained-through offsets) and a first slice of
   the judged log is replayed at --rate clicks/s while the trainer is paused every other
   --ab-window-s (the latency A/B, bench/latency_ab.py: both arms share the broker's state);
5. the rest of the judged log is replayed at the same rate, the trainer running throughout:
   report.json (replay report format, each scorer's model versions, paired intervals for every pair),
   report.md, timeline.png (the four scorers over the stream).

With --phase valid the judged log is the warm log's validation tail (step 3's "rest"), replayed
after the fit sessions with no warm trainer phase: online settings are chosen on it, never on the
test stream.

Printed and written to figures.json, each with its baseline in the same run:
continual HR@20 / frozen twin HR@20; median (and p90) time from a new item's first click to its
first appearance in a neural answer (an answer of `default+online` to a session holding an item the
warm-up model knows, so the network - not the kNN fallback - ranked it; timed between the arrival
of the answer to that first click and the arrival of the answer containing the item, i.e. one
end-to-end latency less than from the click itself); announcement -> first answer by that version;
p50 / p99 with the trainer running vs paused (the A/B; the kNN shadow as control); trainer
examples/s and publish time.

    python bench/continual.py                                  # synthetic stream: new items, drift at day 15
    python bench/continual.py --dataset ../shared/data/yoochoose-100k.test.tsv \\
        --warm ../shared/data/yoochoose-100k.train.tsv --format yoochoose --rate 50
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition
from latency_ab import TrainerToggle, arm_latencies, summary
from rich.console import Console

from streamrec.config import Settings, load_settings
from streamrec.config.settings import TrainingSettings
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.online.settings import OnlineSettings
from streamrec.models.train import train_checkpoint
from streamrec.state.clicklog.protocols import (
    TEST_FRACTION,
    VALID_FRACTION,
    recent_split,
    session_split,
    sessions_of,
    split_by_end,
)
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate
from streamrec.state.clicklog.types import LoggedClick
from streamrec.stream.admin import ensure_topics
from streamrec.stream.broker import EmbeddedBroker
from streamrec.stream.harness.demo import ManagedProcess, demo_overrides, wait_for_groups, worker_process
from streamrec.stream.harness.replay import DrainPolicy, Pacing, Replayer, load_clicks
from streamrec.stream.harness.report import ReplayReport, write_report
from streamrec.stream.kafka import scoring_group, stateful_group
from streamrec.stream.topics import ModelUpdate, Topics, read_answer
from streamrec.stream.updates.follower import ONLINE_SUFFIX, TABLES_SUFFIX

console = Console()
PRESET = "default"
CONTINUAL, TABLES_ONLY, FROZEN, KNN = PRESET + ONLINE_SUFFIX, PRESET + TABLES_SUFFIX, PRESET, "sknn"
SESSION_TIMEOUT_MS = 20_000
_PUBLISHED = re.compile(r"published (\S+) \(#(\d+)\): (\d+) examples, (\d+) steps, .* in ([0-9.]+) s")


class Recorder:
    """Every recommendation and model update from now on, with its arrival wall time (a thread of its own)."""

    def __init__(self, settings: Settings) -> None:
        topics = Topics(settings.kafka.topic_prefix)
        self.answers: list[tuple[float, str, str, str, list[str]]] = []
        self.updates: list[ModelUpdate] = []
        self._consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "bench-recorder",
                                   "enable.auto.commit": False})
        meta = self._consumer.list_topics(topics.recommendations, timeout=30).topics[topics.recommendations]
        self._consumer.assign([TopicPartition(topics.recommendations, p, OFFSET_END) for p in meta.partitions]
                              + [TopicPartition(topics.model_updates, 0, OFFSET_BEGINNING)])
        self._updates_topic = topics.model_updates
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for m in self._consumer.consume(1000, 0.2):
                if m.error() is not None:
                    continue
                now = time.time()
                if m.topic() == self._updates_topic:
                    self.updates.append(ModelUpdate.model_validate_json(m.value()))
                else:
                    a = read_answer(m.value())
                    self.answers.append((now, a.event_id, a.scorer, a.model_version, a.item_ids))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()


def write_answers(recorder: Recorder, path: Path) -> None:
    """Every recorded answer, one JSON line each (event id, scorer, model version, items), for a per-click
    comparison with bench/pipeline_twin.py --answers (the judged phase's event ids end in -m4-<index>)."""
    with gzip.open(path, "wt") as lines:
        for _, event_id, scorer, version, items in recorder.answers:
            lines.write(json.dumps({"event_id": event_id, "scorer": scorer, "version": version, "items": items}) + "\n")


def base_checkpoint(warm: Sequence[LoggedClick], main: Sequence[LoggedClick], fmt: str, seconds: float,
                    out: Path) -> Checkpoint:
    """The warm-up model: trained on the warm log only, early stopping on the warm log's latest sessions."""
    split = session_split(warm, main) if fmt == "yoochoose" else recent_split(warm)
    checkpoint = train_checkpoint(PRESET, split, device="cpu", max_train_seconds=seconds)
    checkpoint.save(out)
    return checkpoint


def learned_split(warm: Sequence[LoggedClick], fmt: str) -> tuple[list[LoggedClick], list[LoggedClick]]:
    """The warm log's clicks the warm-up model learned (its fit sessions: its tables hold them) and the rest.

    The same rule as `base_checkpoint`'s split (state/clicklog/protocols.py): the latest VALID_FRACTION
    of sessions by end time validate (synthetic: after the latest TEST_FRACTION were set aside), the
    rest fit. The rest is a stream the continual model has not learned yet, as in bench/continual_offline.py.
    """
    sessions = sessions_of(warm)
    if fmt != "yoochoose":
        sessions, _ = split_by_end(sessions, TEST_FRACTION)
    fit = {s.session_id for s in split_by_end(sessions, VALID_FRACTION)[0]}
    return [c for c in warm if c.session_id in fit], [c for c in warm if c.session_id not in fit]


def _wait_for_line(process: ManagedProcess, pattern: str, timeout_s: float) -> str:
    """The first log line of `process` matching `pattern` (regex); RuntimeError when it dies or times out."""
    deadline = time.monotonic() + timeout_s
    while True:
        match = re.search(pattern, process.log_path.read_text(errors="replace"))
        if match:
            return match.group(0)
        if time.monotonic() > deadline or not process.alive():
            raise RuntimeError(f"{process.name}: no '{pattern}' in its log; see {process.log_path}")
        time.sleep(0.5)


_PROGRESS = re.compile(r"trainer: (\d+) examples .*?, (\d+) waiting")


def _wait_until_learned(trainer: ManagedProcess, examples: int, timeout_s: float) -> None:
    """Until the trainer's progress line shows `examples` read and none waiting for a step (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and trainer.alive():
        lines = _PROGRESS.findall(trainer.log_path.read_text(errors="replace"))
        if lines and int(lines[-1][0]) >= examples and int(lines[-1][1]) == 0:
            return
        time.sleep(1.0)
    console.print(f"[yellow]{trainer.name} had not stepped through the warm tail in {timeout_s:.0f} s; "
                  "what waits is stored with its last version and learned on resume[/]")


def new_item_delays(main: Sequence[LoggedClick], known: set[str], answers: list[tuple[float, str, str, str, list[str]]],
                    phase_marker: str) -> list[float]:
    """Seconds from the answer to a new item's first click to its first appearance in a neural answer."""
    index_answer: dict[int, tuple[float, str, list[str]]] = {}
    first_answer_at: dict[int, float] = {}
    for at, event_id, scorer, _version, items in answers:
        if phase_marker not in event_id:
            continue
        index = int(event_id.rsplit("-", 1)[1])
        first_answer_at.setdefault(index, at)
        if scorer == CONTINUAL:
            index_answer.setdefault(index, (at, scorer, items))
    neural: dict[int, bool] = {}
    seen_in_session: dict[str, bool] = {}
    first_click: dict[str, int] = {}
    for index, click in enumerate(main):
        seen_in_session[click.session_id] = seen_in_session.get(click.session_id, False) or click.item_id in known
        neural[index] = seen_in_session[click.session_id]
        if click.item_id not in known:
            first_click.setdefault(click.item_id, index)
    appear: dict[str, float] = {}
    for index, (at, _scorer, items) in sorted(index_answer.items(), key=lambda kv: kv[1][0]):
        if neural[index]:
            for item in items:
                if item in first_click and item not in appear:
                    appear[item] = at
    return [appear[item] - first_answer_at[i] for item, i in first_click.items()
            if item in appear and i in first_answer_at and appear[item] >= first_answer_at[i]]


def swap_delays(recorder: Recorder, idle_s: float = 1.0) -> list[float]:
    """Per version: seconds from its announcement to the first answer the continual stage made with it.

    Only versions announced while answers were flowing count (one arrived within `idle_s` after the
    announcement): a version announced while the replay waits between phases (draining, or the trainer
    restarting) is served at once but first answers when clicks come again, which is no swap delay.
    """
    answered = sorted(at for at, _event, scorer, _version, _items in recorder.answers if scorer == CONTINUAL)
    first_by_version: dict[str, float] = {}
    for at, _event, scorer, version, _items in recorder.answers:
        if scorer == CONTINUAL:
            first_by_version.setdefault(version, at)
    delays = []
    for update in recorder.updates:
        if update.version not in first_by_version:
            continue
        following = bisect.bisect_left(answered, update.published_at)
        if following < len(answered) and answered[following] - update.published_at <= idle_s:
            delays.append(first_by_version[update.version] - update.published_at)
    return delays


def trainer_figures(log: str, updates: list[ModelUpdate]) -> dict[str, float | None]:
    published = [(float(m.group(5)), int(m.group(3))) for m in _PUBLISHED.finditer(log)]
    rate = None
    if len(updates) >= 2:
        first, last = min(updates, key=lambda u: u.sequence), max(updates, key=lambda u: u.sequence)
        if last.published_at > first.published_at:
            rate = (last.examples_trained - first.examples_trained) / (last.published_at - first.published_at)
    times = [t for t, _ in published]
    return {"versions_published": len(updates), "examples_per_s": rate,
            "publish_s_median": statistics.median(times) if times else None,
            "publish_s_max": max(times) if times else None}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(args: argparse.Namespace) -> dict[str, object]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.dataset:
        warm, main = load_clicks(Path(args.warm), args.format), load_clicks(Path(args.dataset), args.format)
    else:
        spec = SyntheticSpec(drift_share=args.drift_share, drift_day=args.drift_day)
        clicks = sorted(generate(spec), key=lambda c: c.ts)
        cut = int(len(clicks) * args.warm_share)
        warm, main = clicks[:cut], clicks[cut:]
    if args.phase == "valid":  # judge the warm log's validation tail instead: settings are chosen here, never on main
        main = learned_split(warm, args.format)[1]
    if args.limit:
        main = main[: args.limit]
    logs = f"warm log {len(warm):,} clicks, judged log {len(main):,} clicks"
    started = time.perf_counter()
    if args.base:  # a previous run's warm-up model: a rerun then differs from it only in the pipeline
        console.print(f"{logs}; warm-up checkpoint {args.base}")
        base = Checkpoint.load(Path(args.base))
        if Path(args.base).resolve() != (out / "base.pt").resolve():
            base.save(out / "base.pt")
    else:
        console.print(f"{logs}; training the warm-up checkpoint")
        base = base_checkpoint(warm, main, args.format, args.train_seconds, out / "base.pt")
    train_s = time.perf_counter() - started
    known = set(base.vocab.items)
    n_before = min(args.latency_clicks, len(main) // 4)
    with tempfile.TemporaryDirectory(prefix="streamrec-continual-") as tmp, EmbeddedBroker() as broker:
        overrides = demo_overrides(broker.bootstrap_servers, Path(tmp) / "state", "quix")
        # five busy processes on a shared 2-core box: a 2 s group session timed out under load, and the
        # rebalance restarted the stateful stage on a changelog Tansu's watermarks make it refuse
        overrides["kafka"]["session_timeout_ms"] = SESSION_TIMEOUT_MS
        # the trainer starts at the stream's end once the warm log's fit sessions (what the warm-up model
        # learned) are replayed, so it learns the rest of the warm log and every judged click, each once; it
        # skips no gradient step when the warm tail arrives flat out (the offline bench skips none either)
        if args.session_gap_s is not None:  # a log whose times are synthetic (DIGINETICA periods): see --help
            overrides["session"] = {"inactivity_gap_s": args.session_gap_s}
        settings = load_settings(
            **overrides, scoring={"checkpoint_path": str(out / "base.pt"), "device": "cpu"},
            updates={"learn_tables": not args.no_learn_tables},
            training={"checkpoint_dir": str((out if args.keep_store else Path(tmp)) / "store"), "device": "cpu",
                      "keep_versions": 1000 if args.keep_store else TrainingSettings().keep_versions,
                      "start_from": "latest",
                      "publish_every_s": args.publish_every_s, "publish_every_steps": args.publish_every_steps,
                      "learner": {"max_pending_examples": max(OnlineSettings().max_pending_examples, len(warm)),
                                  "distill_from": args.distill_from}},
        )
        ensure_topics(settings)
        group = settings.kafka.consumer_group
        frozen = settings.model_copy(update={
            "kafka": settings.kafka.model_copy(update={"consumer_group": f"{group}-shadow-frozen"}),
            "updates": settings.updates.model_copy(update={"follow": False}),
            # its own kNN fallback statistics
            "state": settings.state.model_copy(update={"dir": Path(tmp) / "state-frozen"})})
        tables_only = settings.model_copy(update={  # the warm-up weights with the stream's counts (tables-only)
            "kafka": settings.kafka.model_copy(update={"consumer_group": f"{group}-shadow-tables"}),
            "updates": settings.updates.model_copy(update={"follow": False, "frozen_learn_tables": True}),
            "state": settings.state.model_copy(update={"dir": Path(tmp) / "state-tables"})})
        knn = settings.model_copy(update={
            "kafka": settings.kafka.model_copy(update={"consumer_group": f"{group}-shadow-knn"}),
            "scoring": settings.scoring.model_copy(update={"scorer": KNN, "checkpoint_path": None}),
            "state": settings.state.model_copy(update={"dir": Path(tmp) / "state-knn"})})
        fleet = [worker_process("worker", "all", "quix", settings, out),
                 worker_process("shadow-frozen", "scoring", "quix", frozen, out),
                 worker_process("shadow-tables", "scoring", "quix", tables_only, out),
                 worker_process("shadow-knn", "scoring", "quix", knn, out)]
        warm_trainer = worker_process("trainer-warm", "trainer", "quix", settings, out)
        trainer = worker_process("trainer", "trainer", "quix", settings, out)
        learned, unlearned = learned_split(warm, args.format)
        with ExitStack() as running:
            for process in fleet:
                running.enter_context(process)
            wait_for_groups(settings, [stateful_group(settings), scoring_group(settings), scoring_group(frozen),
                                       scoring_group(tables_only), scoring_group(knn)], fleet)
            with Replayer(settings, drain=DrainPolicy(idle_s=30.0, scorers=4), console=console) as replayer:
                replayer.warm_up(learned, args.warm or "synthetic (first half)")
                if args.phase == "test":
                    with warm_trainer:  # learns the warm tail, then stops (it publishes on the way out)
                        _wait_for_line(warm_trainer, "starting from", 120)
                        replayer.warm_up(unlearned, args.warm or "synthetic (first half)")
                        _wait_until_learned(warm_trainer, len(unlearned), 300)
                recorder = Recorder(settings)
                pacing = Pacing(rate_eps=args.rate)
                running.enter_context(trainer)  # test: resumes from the warm trainer's last version and offsets
                _wait_for_line(trainer, "resuming from" if args.phase == "test" else "starting from", 120)
                assert trainer.pid is not None
                with TrainerToggle(trainer.pid, args.ab_window_s) as toggle:  # latency A/B (bench/latency_ab.py)
                    replayer.judge(main[:n_before], pacing=pacing, dataset=args.dataset or "synthetic", fmt=args.format,
                                   label="latency A/B (trainer paused every other window)")
                assert replayer.latest is not None
                latency_ab = {
                    scorer: summary(arm_latencies(replayer.latest, scorer, toggle.intervals, args.ab_margin_s))
                    for scorer in (CONTINUAL, KNN)}
                report = replayer.judge(main[n_before:], pacing=pacing, dataset=args.dataset or "synthetic",
                                        fmt=args.format, label="with trainer")
                dead = [p.name for p in (*fleet, trainer) if not p.alive()]
                if dead:
                    raise RuntimeError(f"{', '.join(dead)} died during the run; see the logs in {out}")
                time.sleep(2.0)
                recorder.close()
            trainer_log = trainer.log_path.read_text(errors="replace")
    write_report(report, out)
    if args.answers:
        write_answers(recorder, out / "answers.jsonl.gz")
    return figures(report, latency_ab, recorder, main[n_before:], known, train_s, trainer_log, args)


def figures(report: ReplayReport, latency_ab: dict[str, dict[str, float | int | None]], recorder: Recorder,
            judged: Sequence[LoggedClick], known: set[str], train_s: float, trainer_log: str,
            args: argparse.Namespace) -> dict[str, object]:
    hr = {s.scorer: s.metrics.get("HR@20") for s in report.scorers}
    marker = "-m4-"  # phases: w1 warm-up (fit sessions), w2 warm-up (the rest), m3 latency A/B, m4 judged
    new_items = new_item_delays(judged, known, recorder.answers, marker)
    swaps = swap_delays(recorder)
    result: dict[str, object] = {
        "command": "python bench/continual.py " + " ".join(args.argv),
        "rate_eps": args.rate, "judged_clicks": len(judged), "warm_up_train_s": train_s,
        "phase": args.phase,
        "hr20": hr, "hr20_continual_over_frozen": (hr.get(CONTINUAL) or 0) / hr[FROZEN] if hr.get(FROZEN) else None,
        "continual_vs": continual_versus(report),
        "answers_trained_on_later_clicks": {s.scorer: s.answers_trained_on_later_clicks for s in report.scorers},
        "model_versions_seen": {s.scorer: s.model_versions_seen for s in report.scorers},
        "missing": {s.scorer: s.missing for s in report.scorers},
        "new_items": len({c.item_id for c in judged if c.item_id not in known}),
        "new_items_recommended": len(new_items),
        "new_item_first_neural_recommendation_s_median": statistics.median(new_items) if new_items else None,
        "new_item_first_neural_recommendation_s_p90": _pct(new_items, 0.9),
        "announce_to_serving_s_median": statistics.median(swaps) if swaps else None,
        "announce_to_serving_s_max": max(swaps) if swaps else None,
        "latency_ab": latency_ab,
        "p99_ms_judged_phase": {s.scorer: s.latency.p99_ms for s in report.scorers},
        "trainer": trainer_figures(trainer_log, recorder.updates),
    }
    return result


def continual_versus(report: ReplayReport) -> list[dict[str, object]]:
    """The report's paired differences that involve the continual model, as continual - other."""
    rows: list[dict[str, object]] = []
    for p in report.paired:
        if CONTINUAL not in (p.a, p.b):
            continue
        sign, other = (1.0, p.b) if p.a == CONTINUAL else (-1.0, p.a)
        low, high = sorted((sign * p.ci95[0], sign * p.ci95[1]))
        rows.append({"other": other, "metric": p.metric, "diff": sign * p.diff, "ci95": [low, high],
                     "beats": low > 0, "predictions": p.predictions})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", help="judged log (default: the synthetic stream's second half)")
    parser.add_argument("--warm", help="warm-up log the base model trains on and the pipeline is warmed with")
    parser.add_argument("--format", default="synthetic")
    parser.add_argument("--phase", choices=("valid", "test"), default="test",
                        help="valid: judge the warm log's latest sessions (the warm-up model's validation tail, as "
                             "bench/continual_offline.py --phase valid) instead of the judged log; "
                             "choose settings here")
    parser.add_argument("--warm-share", type=float, default=0.5, help="synthetic: share of the stream used to warm up")
    parser.add_argument("--drift-share", type=float, default=0.5,
                        help="synthetic: share of items whose successors change at --drift-day (0: no drift)")
    parser.add_argument("--drift-day", type=float, default=15.0, help="synthetic: day of the 30 the drift happens")
    parser.add_argument("--rate", type=float, default=100.0, help="paced send rate of the judged log, clicks/s")
    parser.add_argument("--latency-clicks", type=int, default=2000,
                        help="first clicks of the judged log, sent for the latency A/B (not judged for quality)")
    parser.add_argument("--ab-window-s", type=float, default=5.0,
                        help="latency A/B: the trainer is paused every other window of this length")
    parser.add_argument("--ab-margin-s", type=float, default=1.0,
                        help="latency A/B: clicks sent this close to a switch count for neither arm")
    parser.add_argument("--limit", type=int, default=0, help="judge at most this many clicks (0: all)")
    parser.add_argument("--session-gap-s", type=float, default=None,
                        help="session.inactivity_gap_s for the run (default: the settings'). A log with synthetic "
                             "times needs one no real session gap reaches: DIGINETICA periods spread each week's "
                             "clicks evenly, so most within-session gaps exceed the default 30 minutes and the "
                             "stateful stage would split its sessions (604800, one period, keeps them whole; "
                             "docs/benchmarks.md, \"DIGINETICA periods\")")
    parser.add_argument("--train-seconds", type=float, default=180.0, help="max_train_seconds of the warm-up model")
    parser.add_argument("--answers", action="store_true", help="also write every answer to answers.jsonl.gz")
    parser.add_argument("--keep-store", action="store_true",
                        help="keep every version the trainer publishes under <out>/store (~70 MB each on DIGINETICA)")
    parser.add_argument("--base", help="serve this warm-up checkpoint instead of training one (a previous run's "
                        "base.pt on the same warm log: a rerun then differs only in the pipeline)")
    parser.add_argument("--publish-every-s", type=float, default=10.0)
    parser.add_argument("--publish-every-steps", type=int, default=200)
    parser.add_argument("--no-learn-tables", action="store_true",
                        help="ablation: the continual stage's tables change only with each version "
                             "(updates.learn_tables off)")
    parser.add_argument("--distill-from", choices=("start", "latest"), default=OnlineSettings().distill_from,
                        help="the trainer's distillation teacher (OnlineSettings.distill_from)")
    parser.add_argument("--out", default="reports/continual")
    import sys

    args = parser.parse_args()
    args.argv = sys.argv[1:]
    result = run(args)
    text = json.dumps(result, indent=2, default=str)
    console.print(text)
    (Path(args.out) / "figures.json").write_text(text)


if __name__ == "__main__":
    main()
