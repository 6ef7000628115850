"""What the scoring stage learns, exactly once: the per-batch `LedgerGate` and the start-up `catch_up`.

Statistics must survive the loss of the local folder and never count a click twice across
crashes (docs/architecture.md, "Scorer statistics"): `LedgerGate` filters each batch through the
scorers' ledgers (state/learned.py), `catch_up` re-learns from the scoring-requests topic what
the committed offsets say was answered but the local statistics do not contain.
"""
