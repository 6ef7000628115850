"""A user's mistake at the command line: one line saying what to do, exit 2 (input) or 1 (no broker), no traceback.

Every case runs the real `streamrec` CLI as a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamrec.stream.broker import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
YOOCHOOSE_ROWS = "SessionId\tItemId\tTime\n" + "".join(f"{s}\t{100 + i}\t{1396300000 + 60 * i}\n"
                                                       for s in (1, 2) for i in range(5))


def run_cli(*args: str, env: dict[str, str] | None = None, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "streamrec", *args], cwd=REPO_ROOT, env=clean, capture_output=True,
                          text=True, timeout=timeout_s)


def assert_refused(result: subprocess.CompletedProcess[str], status: int, *phrases: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == status, output
    assert "Traceback" not in output, output
    for phrase in phrases:
        assert phrase in output, output
    return output


def test_version_and_scorers() -> None:
    assert run_cli("--version").stdout.startswith("streamrec ")
    listed = run_cli("scorers")
    assert listed.returncode == 0 and "sknn" in listed.stdout and "pop" in listed.stdout, listed.stderr


def test_bad_environment_value_names_the_variable() -> None:
    result = run_cli("settings", env={"STREAMREC_KAFKA__PARTITIONS": "many"})
    assert_refused(result, 2, "STREAMREC_KAFKA__PARTITIONS", "'many'")


def test_serve_refuses_a_bad_write_key_without_echoing_it_and_a_bad_origin() -> None:
    output = assert_refused(run_cli("serve", env={"STREAMREC_API__WRITE_API_KEY": "hunter2"}), 2,
                            "STREAMREC_API__WRITE_API_KEY", "16 printable ASCII")
    assert "hunter2" not in output and len(output.strip().splitlines()) == 1, output
    result = run_cli("serve", env={"STREAMREC_API__CORS_ALLOW_ORIGINS": '["https://shop.example.com/"]'})
    assert_refused(result, 2, "STREAMREC_API__CORS_ALLOW_ORIGINS", "not an origin", "trailing slash")


def test_no_broker_names_the_address_and_the_fix() -> None:
    address = f"127.0.0.1:{free_port()}"
    result = run_cli("replay", env={"STREAMREC_KAFKA__BOOTSTRAP_SERVERS": address})
    output = assert_refused(result, 1, address, "streamrec broker")
    assert len(output.strip().splitlines()) == 1, output


def test_missing_dataset_file() -> None:
    assert_refused(run_cli("replay", "--dataset", "/nonexistent/clicks.tsv", "--format", "yoochoose"), 2,
                   "/nonexistent/clicks.tsv", "no such file")


@pytest.mark.parametrize(("args", "choices"), [
    (("replay", "--format", "csv"), "events-csv"),
    (("train", "--model", "gpt"), "srgnn"),
])
def test_unknown_choice_lists_the_valid_ones(args: tuple[str, ...], choices: str) -> None:
    assert_refused(run_cli(*args), 2, choices)


def test_unknown_scorer_lists_the_valid_ones() -> None:
    result = run_cli("worker", env={"STREAMREC_SCORING__SCORER": "transformer"})
    assert_refused(result, 2, "STREAMREC_SCORING__SCORER", "sknn", "streamrec scorers")


def test_dataset_without_format_is_detected_and_said(tmp_path: Path, broker: str) -> None:
    log = tmp_path / "clicks.tsv"
    log.write_text(YOOCHOOSE_ROWS)
    address = f"127.0.0.1:{free_port()}"  # stops right after the detection: no broker there
    result = run_cli("replay", "--dataset", str(log), env={"STREAMREC_KAFKA__BOOTSTRAP_SERVERS": address})
    assert_refused(result, 1, "looks like yoochoose")
    unknown = tmp_path / "clicks.bin"
    unknown.write_text("\x00\x01garbage\n")
    assert_refused(run_cli("replay", "--dataset", str(unknown)), 2, "give --format")


def test_wrong_format_is_refused_not_misread(tmp_path: Path, broker: str) -> None:
    log = tmp_path / "yoochoose.tsv"
    log.write_text(YOOCHOOSE_ROWS)
    env = {"STREAMREC_KAFKA__BOOTSTRAP_SERVERS": broker}
    result = run_cli("replay", "--dataset", str(log), "--format", "amazon-beauty", "--limit", "5", env=env)
    assert_refused(result, 2, "looks like yoochoose", "--format yoochoose")
    assert "replaying" not in result.stdout  # nothing was sent


def test_rows_that_do_not_match_the_format_are_refused_with_line_numbers(tmp_path: Path, broker: str) -> None:
    log = tmp_path / "events.csv"
    rows = ["session_id,user_id,item_id,timestamp", "s1,u1,i1,1700000000", "s1,u1,i2,yesterday", "s1,u1"]
    log.write_text("\n".join(rows * 1) + "\n")
    env = {"STREAMREC_KAFKA__BOOTSTRAP_SERVERS": broker}
    result = run_cli("replay", "--dataset", str(log), "--format", "events-csv", env=env)
    assert_refused(result, 2, "line 3", "line 4")


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_offline_commands_refuse_a_file_in_another_format(tmp_path: Path, command: str) -> None:
    """`train`/`evaluate` read through the protocols: the same refusal as replay, before any training starts."""
    log = tmp_path / "yoochoose.tsv"
    log.write_text(YOOCHOOSE_ROWS)
    result = run_cli(command, "--dataset", str(log), "--format", "amazon-beauty", "--protocol", "loo",
                     "--out", str(tmp_path / "out"))
    assert_refused(result, 2, "looks like yoochoose", "--format yoochoose")
    assert "epoch" not in result.stdout + result.stderr


def test_an_unknown_engine_is_one_line_naming_the_registered_ones() -> None:
    from streamrec.stream.stages.engines.registry import engine_names

    result = run_cli("worker", env={"STREAMREC_STATE__ENGINE": "flink"})
    output = assert_refused(result, 2, "STREAMREC_STATE__ENGINE", "'flink'", *engine_names())
    assert len(output.strip().splitlines()) == 1, output


def test_an_unknown_engine_option_is_one_line_exit_2() -> None:
    from streamrec.stream.stages.engines.registry import engine_names

    result = run_cli("worker", "--engine", "flink")
    output = assert_refused(result, 2, "unknown engine 'flink'", *engine_names())
    assert len(output.strip().splitlines()) == 1, output


def test_the_demo_refuses_an_unknown_engine_before_starting_anything() -> None:
    result = run_cli("demo", "--engine", "flink", "--exit")
    output = assert_refused(result, 2, "unknown engine 'flink'")
    assert len(output.strip().splitlines()) == 1 and "demo:" not in output, output
