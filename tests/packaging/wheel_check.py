"""Run by tests/packaging/test_wheel.py inside a fresh virtualenv holding only the built wheel.

argv: the wheel's module names (one per line in a file), the site-packages the wheel went into,
a scratch folder. Imports every module, then saves, loads and scores a checkpoint of every preset.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

modules_file, site_packages, scratch = Path(sys.argv[1]), Path(sys.argv[2]).resolve(), Path(sys.argv[3])

import streamrec  # noqa: E402

assert Path(streamrec.__file__).resolve().is_relative_to(site_packages), f"streamrec came from {streamrec.__file__}"
editable = [name for name in sys.modules if name.startswith("__editable__")]
assert not editable, f"the test venv's editable finder is active here: {editable}"

for name in modules_file.read_text().split():
    module = importlib.import_module(name)
    assert Path(module.__file__).resolve().is_relative_to(site_packages), f"{name} came from {module.__file__}"

from dataclasses import replace  # noqa: E402

import torch  # noqa: E402

from streamrec.config import load_settings  # noqa: E402
from streamrec.models.checkpoint import Checkpoint  # noqa: E402
from streamrec.models.knn import knn_params  # noqa: E402
from streamrec.models.presets import PRESETS  # noqa: E402
from streamrec.models.recommender import SessionRecommender  # noqa: E402
from streamrec.models.scorer import Query  # noqa: E402
from streamrec.models.serving import NeuralScorer  # noqa: E402
from streamrec.state.vocab import ItemVocabulary  # noqa: E402

torch.manual_seed(0)
vocab = ItemVocabulary(f"i{n}" for n in range(40))
query = Query(session_items=["i1", "i2", "i3"], history_items=[f"i{n}" for n in range(4, 30)])
knn = knn_params(load_settings())  # what training fills in from scoring.sknn_* (saved in the checkpoint)
for name, config in PRESETS.items():
    model = SessionRecommender(replace(config, knn=knn), num_items=len(vocab))
    model.item_counts += 1.0
    model.start_epoch([list(range(1, len(vocab)))] * 4)  # fits the memory's chunk clusters where a preset has them
    path = Checkpoint.from_model(name, model, vocab, {}).save(scratch / f"{name}.pt")
    scorer = NeuralScorer(Checkpoint.load(path), device="cpu")
    ranked = scorer.recommend([query], k=5)[0]
    assert len(ranked) == 5, f"{name}: {ranked}"
    print(f"{name}: {scorer.version} ranks {[item for item, _ in ranked]}")
print("ok")
