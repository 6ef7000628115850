"""Screen settings of the self-attentive encoder on validation, at equal epochs: the all-positions stage alone.

    .venv/bin/python bench/encoder_screen.py [--preset sasrec] [--epochs 30] [--set dim=64 --set lowpass_mix=0 ...]
        [--dataset ../shared/data/amazon-beauty.seq.txt --format amazon-beauty --protocol loo] [--threads 1]

Trains exactly `--epochs` epochs of models/sequence_training.py (patience off, no time cap) with the
preset's settings, some replaced by `--set field=value`, and prints the validation NDCG@20 of the
two-tower score after every epoch, then the best epoch's metrics. Comparing settings at equal epochs
(one thread each, so two screens can share the 2-core machine) is how the attention presets'
architecture was chosen (docs/models.md, "Self-attentive encoder"). The test split is never read.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields
from pathlib import Path

import torch

from streamrec.models.presets import ModelConfig, preset
from streamrec.models.sequence_training import train_sequences
from streamrec.models.train import _initial_model, _seed_everything, encode_examples, evaluate
from streamrec.state.clicklog.protocols import split_for
from streamrec.state.vocab import ItemVocabulary

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def parse_override(text: str) -> tuple[str, object]:
    """"field=value" -> (field, value typed as the ModelConfig field's default)."""
    name, _, value = text.partition("=")
    defaults = ModelConfig()
    kinds = {f.name: type(d) for f in fields(ModelConfig) if (d := getattr(defaults, f.name)) is not None}
    if name not in kinds or not value:
        raise SystemExit(f"--set {text!r}: give field=value with a ModelConfig field ({', '.join(sorted(kinds))})")
    kind = kinds[name]
    return name, (value.lower() in ("1", "true", "on")) if kind is bool else kind(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DATA / "amazon-beauty.seq.txt")
    parser.add_argument("--format", default="amazon-beauty")
    parser.add_argument("--protocol", default="loo")
    parser.add_argument("--preset", default="sasrec")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="overrides")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the curve and the best metrics")
    args = parser.parse_args()
    overrides = dict(parse_override(o) for o in args.overrides)
    config = preset(args.preset, **{**overrides, "sequence_epochs": args.epochs, "patience": args.epochs + 1,
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
    print(f"{args.preset} {overrides or ''}: {config.select_metric} by epoch "
          + " ".join(f"{e}:{v:.4f}" for e, v in enumerate(curve, 1)))
    print(f"best epoch {best.get('sequence_epoch')}: " + ", ".join(f"{k} {v:.4f}" for k, v in best.items()
                                                               if k not in ("n", "sequence_epoch"))
          + f" ({seconds:.0f} s, {args.threads} thread(s))")
    if args.out:
        args.out.write_text(json.dumps({"preset": args.preset, "overrides": overrides, "curve": curve,
                                        "best": best, "seconds": seconds}, indent=2))


if __name__ == "__main__":
    main()
