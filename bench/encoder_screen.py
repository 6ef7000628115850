"""Screen settings of the self-attentive encoder on validation, at equal epochs: the all-positions stage alone.

    .venv/bin/python bench/encoder_screen.py [--row 'sasrec:dim=64;lowpass_mix=0'] [--epochs 30] [--threads 1]
        [--dataset ../shared/data/amazon-beauty.seq.txt --format amazon-beauty --protocol loo]

Trains exactly `--epochs` epochs of models/sequence_training.py (patience off, no time cap) with the
preset's settings, some replaced as in bench/ablation.py's rows (`preset:field=value;...`), and prints
the validation NDCG@20 of the two-tower score after every epoch, then the best epoch's metrics.
Comparing settings at equal epochs (one thread each, so two screens can share the 2-core machine) is
how the attention presets' architecture was chosen (docs/models.md, "Self-attentive encoder"). The
test split is never read.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from ablation import parse_row
from paths import DATA

from streamrec.models.presets import preset
from streamrec.models.sequence_training import train_sequences
from streamrec.models.train import _initial_model, _seed_everything, encode_examples, evaluate
from streamrec.state.clicklog.protocols import split_for
from streamrec.state.vocab import ItemVocabulary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DATA / "amazon-beauty.seq.txt")
    parser.add_argument("--format", default="amazon-beauty")
    parser.add_argument("--protocol", default="loo")
    parser.add_argument("--row", default="sasrec", help="preset[:field=value;...] (bench/ablation.py's rows)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the curve and the best metrics")
    args = parser.parse_args()
    name, overrides = parse_row(args.row)
    config = preset(name, **{**overrides, "sequence_epochs": args.epochs, "patience": args.epochs + 1,
                                    "sequence_train_seconds": float("inf")})
    torch.set_num_threads(args.threads)
    _seed_everything(args.seed)
    split = split_for(args.format, args.dataset, args.protocol)
    vocab = ItemVocabulary(split.items)
    sequences = [vocab.encode_known(s.items) for s in split.train]
    model = _initial_model(config, vocab, sequences)
    valid = encode_examples(vocab, split.valid)
    curve: list[float] = []

    def validate(_: object) -> dict[str, float]:
        metrics = evaluate(model, valid, config.batch_size * 4)
        curve.append(metrics[config.select_metric])
        return metrics

    started = time.monotonic()
    _, best = train_sequences(model, config, sequences, validate, torch.device("cpu"))
    seconds = time.monotonic() - started
    print(f"{args.row}: {config.select_metric} by epoch "
          + " ".join(f"{e}:{v:.4f}" for e, v in enumerate(curve, 1)))
    print(f"best epoch {best.get('sequence_epoch')}: " + ", ".join(f"{k} {v:.4f}" for k, v in best.items()
                                                               if k not in ("n", "sequence_epoch"))
          + f" ({seconds:.0f} s, {args.threads} thread(s))")
    if args.out:
        args.out.write_text(json.dumps({"row": args.row, "curve": curve,
                                        "best": best, "seconds": seconds}, indent=2))


if __name__ == "__main__":
    main()
