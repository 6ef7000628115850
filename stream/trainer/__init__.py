"""The trainer role: fine-tunes the graph model on the scoring-requests stream and publishes versions.

`streamrec worker --role trainer` (or `streamrec train --follow`) runs `run_trainer`: read
requests -> examples -> models/online's ContinualLearner -> every N steps or T seconds a
versioned checkpoint in the store (state/checkpoint_store.py) announced on `model-updates`.
"""
