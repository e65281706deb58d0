"""The encoder fine-tuning experiment: its pairs come from the training fold only, with the right targets, and
one step of the loss moves the encoder."""
import random
import subprocess
import sys

from benchmarks.encoder_finetune import contrastive_pairs, fine_tune
from benchmarks.launch import ROOT


def test_pairs_stay_in_the_training_fold_and_label_same_and_other_levels():
    labels = [0, 0, 1, 1, 2, 2, 3, 4]
    train = [0, 1, 2, 3, 4, 5]  # 6 and 7 are held out
    pairs = contrastive_pairs(labels, train, random.Random(1))
    assert len(pairs) == 2 * len(train)
    assert all(i in train and j in train for i, j, _ in pairs)
    assert all((labels[i] == labels[j]) == (target == 1.0) for i, j, target in pairs)


def test_one_step_changes_the_encoder():
    import torch
    from sentence_transformers import SentenceTransformer

    from triage_site.classification import encoder

    model = SentenceTransformer(str(encoder.resolve(encoder.DEFAULT_ENCODER)), device="cpu")
    texts = ["he is not breathing", "she collapsed and has no pulse", "I need a repeat prescription",
             "my ankle is a bit sore"]
    before = model.encode(texts, convert_to_tensor=True)
    fine_tune(model, texts, [(0, 1, 1.0), (0, 2, 0.0), (2, 3, 1.0), (1, 3, 0.0)], lr=1e-3, batch=4, log=lambda _: None)
    with torch.inference_mode():
        after = model.encode(texts, convert_to_tensor=True)
    assert not torch.allclose(before, after)


def test_a_fold_outside_the_folds_is_refused():
    done = subprocess.run([sys.executable, "benchmarks/encoder_finetune.py", "--fold", "10"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--fold must be in 0..9" in done.stderr
