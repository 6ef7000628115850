"""`evaluate` and `streamrec evaluate` end to end on a small synthetic log."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamrec.cli import app
from streamrec.models.evaluate import evaluate, paired_results
from streamrec.state.clicklog import Split, SyntheticSpec, generate, recent_split
from streamrec.state.ranking_metrics import METRIC_NAMES

SMALL = SyntheticSpec(users=80, sessions=800, items=300, intents=12, seed=11)


@pytest.fixture(scope="module")
def split() -> Split:
    return recent_split(generate(SMALL))


def test_knn_clearly_beats_popularity(split: Split) -> None:
    pop, sknn = evaluate(split, ["pop", "sknn"], device="cpu", progress=False)
    assert (pop.model, sknn.model) == ("pop", "sknn")
    for result in (pop, sknn):
        assert result.predictions == len(split.test)
        assert set(result.metrics) == set(METRIC_NAMES)
        assert all(0.0 <= value <= 1.0 for value in result.metrics.values())
        assert result.train_seconds >= 0 and result.predictions_per_s > 0
    assert sknn.metrics["HR@20"] > pop.metrics["HR@20"] + 0.15
    assert sknn.metrics["MRR@20"] > 2 * pop.metrics["MRR@20"]
    paired = {p.metric: p for p in paired_results([sknn, pop])}
    assert set(paired) == {"HR@20", "MRR@20", "NDCG@10"}
    for metric, difference in paired.items():
        assert (difference.a, difference.b) == ("sknn", "pop")
        assert difference.diff == pytest.approx(sknn.metrics[metric] - pop.metrics[metric])
        assert difference.ci95[0] <= difference.diff <= difference.ci95[1]
        assert difference.predictions == len(split.test)
        assert difference.groups == len({e.group for e in split.test}) < len(split.test)  # sessions, not clicks
    assert paired["HR@20"].a_beats_b and paired["HR@20"].verdict == "sknn beats pop"


def test_cli_prints_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["evaluate", "--models", "pop,sknn", "--protocol", "loo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "HR@20" in result.output and "sknn" in result.output
    report = json.loads(out.read_text())
    assert report["dataset"] == "synthetic" and report["protocol"] == "loo"
    assert report["split"]["test_examples"] > 0
    assert [m["model"] for m in report["models"]] == ["pop", "sknn"]
    assert set(report["models"][1]["metrics"]) == set(METRIC_NAMES)
    assert {"platform", "cpus", "python"} <= set(report["host"])
    assert [(p["a"], p["b"], p["metric"]) for p in report["paired"]] == [
        ("pop", "sknn", "HR@20"), ("pop", "sknn", "MRR@20"), ("pop", "sknn", "NDCG@10")]
    for difference in report["paired"]:
        low, high = difference["ci95"]
        assert low <= difference["diff"] <= high
    assert "paired differences" in result.output


@pytest.mark.slow
def test_neural_preset_through_the_same_interface() -> None:
    """Any non-baseline name is a preset trained by models.train.fit (tiny log: this trains for real)."""
    pytest.importorskip("streamrec.models.train")
    tiny = recent_split(generate(SyntheticSpec(users=20, sessions=150, items=60, intents=4, seed=11)))
    (result,) = evaluate(tiny, ["srgnn"], device="cpu", progress=False)
    assert result.model == "srgnn" and result.version
    assert result.valid is not None and "NDCG@20" in result.valid  # the validation that picked its epoch
    assert result.predictions == len(tiny.test)
    assert all(0.0 <= value <= 1.0 for value in result.metrics.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "pop,nonsense"], "nonsense"),
        (["--format", "yoochoose", "--models", "pop"], "needs a dataset"),
        (["--protocol", "random", "--models", "pop"], "protocol"),
    ],
)
def test_cli_bad_arguments_exit_with_a_message(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", *args, "--out", str(tmp_path / "x.json")])
    assert result.exit_code != 0
    assert message in str(result.exception) + result.output
    assert not (tmp_path / "x.json").exists()


def test_a_checkpoint_file_is_evaluated_as_it_is_not_retrained(tmp_path: Path) -> None:
    """`--models sknn,model.pt`: the file trained earlier on the same split is ranked next to the baseline."""
    from streamrec.models.checkpoint import Checkpoint
    from streamrec.models.train import train_checkpoint
    from streamrec.state.clicklog.protocols import split_for

    trained = train_checkpoint("srgnn", split_for("synthetic", None, "loo"), device="cpu", dim=8, max_epochs=1)
    path = trained.save(tmp_path / "model.pt")
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["evaluate", "--models", f"sknn,{path}", "--protocol", "loo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert [m["model"] for m in report["models"]] == ["sknn", str(path)]
    assert report["models"][1]["version"] == Checkpoint.load(path).version
    assert report["models"][1]["valid"] == pytest.approx(trained.metrics["valid"])  # what chose it, kept with it
    assert report["models"][0]["valid"] is None  # a baseline has no validation epoch
    assert [(p["a"], p["b"]) for p in report["paired"]][0] == ("sknn", str(path))
