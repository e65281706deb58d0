"""Does fine-tuning the sentence encoder help the urgency head on scenarios it never saw? One leave-scenario-out
fold, both ways in one run.

    .venv/bin/python benchmarks/encoder_finetune.py --fold 0 [--folds 10] [--epochs 1] [--lr 2e-5]
                                                    [--batch 32] [--seed 0] [--json out.json]

The training data (`head.training_paths()`) is split by scenario as `evaluate_classifier --cross-validate` splits
it (GroupKFold), and fold `--fold` is held out. Baseline: the shipped recipe, the head fitted on the other folds
with frozen MiniLM features. Fine-tuned: MiniLM first trained contrastively on the other folds only (SetFit's
recipe, written out because sentence-transformers' `fit` needs the `datasets` package: for each training text one
pair with a text of the same level, cosine target 1, and one with a text of another level, target 0; mean squared
error on the cosine), then the whole-text embedding of every row recomputed with it and the same head fitted
and scored; the finding scores and clause features stay those of the frozen encoder. Both are scored by the
same decision (costs, raise, rules) on the same held-out rows. Prints both reports' figures, writes JSON.

About 22 minutes on 2 CPU cores for one fold (pairs: 2 per training row, ~3 s per batch of 32).
"""
import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triage_site.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FIGURES = ("accuracy", "within_one", "under_triage", "under_triage_0_1", "over_triage", "share_level_0",
           "needs_review")


def contrastive_pairs(labels, indices, rng):
    """(i, j, target) for each i in `indices`: one partner of the same level (1.0), one of another level (0.0),
    both drawn from `indices` (the training fold only)."""
    by_level = {}
    for i in indices:
        by_level.setdefault(labels[i], []).append(i)
    pairs = []
    for i in indices:
        pairs.append((i, rng.choice(by_level[labels[i]]), 1.0))
        other = rng.choice([level for level in by_level if level != labels[i]])
        pairs.append((i, rng.choice(by_level[other]), 0.0))
    rng.shuffle(pairs)
    return pairs


def fine_tune(model, texts, pairs, *, lr, batch, log=print):
    """One pass over `pairs` with the cosine-similarity loss; returns the model, in eval mode."""
    import torch

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    for start in range(0, len(pairs), batch):
        chunk = pairs[start:start + batch]
        left = model(model.tokenize([texts[i] for i, _, _ in chunk]))["sentence_embedding"]
        right = model(model.tokenize([texts[j] for _, j, _ in chunk]))["sentence_embedding"]
        cosine = torch.nn.functional.cosine_similarity(left, right)
        loss = torch.nn.functional.mse_loss(cosine, torch.tensor([target for _, _, target in chunk]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (start // batch) % 50 == 0:
            log(f"  step {start // batch} of {-(-len(pairs) // batch)}: loss {loss.item():.4f}")
    model.eval()
    return model


def fold_figures(rows, embeddings, supports, clause_features, train_index, test_index, encoder_name):
    """The held-out rows' figures, as `evaluate_classifier --cross-validate` computes them for one fold."""
    from triage_site.classification import evaluation, head

    predicted = evaluation.fold_predictions(rows, embeddings, supports, clause_features, train_index, test_index,
                                            encoder_name, under_cost=head.DEFAULT_UNDER_COST,
                                            minor_under_cost=head.DEFAULT_MINOR_UNDER_COST, c=head.DEFAULT_C)
    report = evaluation.report_for([rows[i] for i in test_index], predicted)
    return {name: report[name] for name in FIGURES}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    if not 0 <= args.fold < args.folds:
        parser.error(f"--fold must be in 0..{args.folds - 1}")

    import django

    django.setup()
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from sklearn.model_selection import GroupKFold

    from triage_site.classification import encoder, head

    started = time.monotonic()
    log = lambda message: print(f"[{time.monotonic() - started:6.0f} s] {message}", flush=True)  # noqa: E731
    rows = head.read_training(head.training_paths())
    texts = [row["text"] for row in rows]
    labels = [int(row["label"]) for row in rows]
    scenarios = [row.get("scenario") or f"row-{i}" for i, row in enumerate(rows)]
    train_index, test_index = list(GroupKFold(n_splits=args.folds).split(texts, groups=scenarios))[args.fold]
    encoder_name = encoder.configured_name()
    embeddings, supports, clause_features = head.prepared(rows, encoder_name)
    log(f"{len(rows)} rows prepared; fold {args.fold}: {len(train_index)} train, {len(test_index)} held out")
    baseline = fold_figures(rows, embeddings, supports, clause_features, train_index, test_index, encoder_name)
    log(f"frozen encoder: {json.dumps(baseline)}")

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    model = SentenceTransformer(str(encoder.resolve(encoder_name)), device="cpu")
    for epoch in range(args.epochs):
        pairs = contrastive_pairs(labels, list(train_index), rng)
        log(f"epoch {epoch + 1}: {len(pairs)} pairs")
        fine_tune(model, texts, pairs, lr=args.lr, batch=args.batch, log=log)
    with torch.inference_mode():
        tuned_embeddings = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    tuned = fold_figures(rows, np.asarray(tuned_embeddings, dtype=embeddings.dtype), supports, clause_features,
                         train_index, test_index, encoder_name)
    log(f"fine-tuned encoder: {json.dumps(tuned)}")

    print(f"\nfold {args.fold} of {args.folds} (leave-scenario-out), {len(test_index)} held-out requests")
    print(f"{'figure':18} {'frozen':>8} {'fine-tuned':>11}")
    for name in FIGURES:
        print(f"{name:18} {baseline[name]:8.1%} {tuned[name]:11.1%}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"fold": args.fold, "folds": args.folds, "epochs": args.epochs,
                                                    "lr": args.lr, "batch": args.batch, "seed": args.seed,
                                                    "held_out": len(test_index), "frozen": baseline,
                                                    "fine_tuned": tuned}, indent=2))
        print(f"wrote {args.json_path}")


if __name__ == "__main__":
    main()
