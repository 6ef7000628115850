"""A broken checkpoint stops the worker with one line naming the file, not a traceback.

Before, an empty checkpoint made the worker print only `Aborted.` (click's answer to the
EOFError torch raised) and a corrupt one `IndexError: pop from empty list`, neither naming the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from streamrec.config import Settings


@pytest.mark.parametrize(("kind", "content", "complaint"), [
    ("empty", b"", "empty"),
    ("corrupt", b"\x80\x02garbage that is no checkpoint" * 10, "corrupt"),
])
def test_worker_exits_with_one_line_naming_a_broken_checkpoint(
    kind: str, content: bytes, complaint: str, make_settings: Callable[..., Settings], spawn_worker: Callable,
    tmp_path: Path,
) -> None:
    path = tmp_path / f"{kind}.pt"
    path.write_bytes(content)
    settings = make_settings(scoring={"checkpoint_path": path})
    worker = spawn_worker(settings)
    assert worker.process.wait(timeout=120) != 0, worker.log()
    log = worker.log()
    assert "Traceback" not in log and "Aborted" not in log, log
    [line] = [line for line in log.splitlines() if str(path) in line]
    assert complaint in line, log
