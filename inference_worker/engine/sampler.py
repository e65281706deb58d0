"""The sampler: one token per sampled row of a step, from the rows' logits and their sequences' settings.

Greedy rows without processors keep the batch argmax. The other rows are grouped by their SamplingParams
(the service gives most requests the same ones), and each group goes through transformers' processors in
one batched call: sequences differ in length, so their token ids are left-padded with an id one past the
vocabulary, for which the scores get one extra, never-chosen column. The pad cannot match a real n-gram nor
penalise a real token, so each row is processed exactly as ``generate`` would process it alone. Sampled
rows then draw with noise from their own generator: a seed gives the same tokens whatever shares the batch.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from .sampling import SamplingParams


def sample(logits: torch.Tensor, greedy: torch.Tensor, sequences) -> list[int]:
    """logits [rows, vocab] and their argmax ``greedy`` [rows]; ``sequences[i]`` owns row i."""
    groups: dict[SamplingParams, list[int]] = defaultdict(list)
    for row, seq in enumerate(sequences):
        if seq.sampling.needs_logits:
            groups[seq.sampling].append(row)
    if not groups:
        return greedy.tolist()
    tokens = greedy.clone()
    for params, rows in groups.items():
        index = torch.tensor(rows, device=logits.device)
        tokens[index] = _sample_group(params, logits[index], [sequences[row] for row in rows])
    return tokens.tolist()


def _sample_group(params: SamplingParams, logits: torch.Tensor, sequences) -> torch.Tensor:
    rows, vocab = logits.shape
    scores = torch.full((rows, vocab + 1), float("-inf"), dtype=torch.float32, device=logits.device)
    scores[:, :vocab] = logits
    scores = params.processors()(_padded_token_ids(sequences, pad=vocab, device=logits.device), scores)[:, :vocab]
    if params.greedy:
        return scores.argmax(dim=-1)
    # a draw from softmax(scores) as in nano-vllm, argmax of probs / Exp(1) noise; the noise is -log(uniform),
    # each row's from its own generator (torch's exponential_ is ~40x slower than rand on the CPU)
    probs = torch.softmax(scores, dim=-1)
    uniform = torch.stack([torch.rand(vocab, device=probs.device, generator=_generator(seq, probs.device))
                           for seq in sequences])
    return (probs / uniform.log_().neg_().clamp_min_(1e-10)).argmax(dim=-1)


def _padded_token_ids(sequences, pad: int, device) -> torch.Tensor:
    """Each sequence's prompt and answer so far, right-aligned in one [rows, longest] tensor."""
    longest = max(len(seq.token_ids) for seq in sequences)
    ids = np.full((len(sequences), longest), pad, dtype=np.int64)
    for i, seq in enumerate(sequences):
        ids[i, longest - len(seq.token_ids):] = seq.token_ids
    return torch.from_numpy(ids).to(device, non_blocking=True)


def _generator(seq, device) -> torch.Generator:
    """The sequence's own generator, made at its first draw: seeded if it asked, else freshly random."""
    if seq.generator is None:
        seq.generator = torch.Generator(device=device)
        if seq.sampling.seed is None:
            seq.generator.seed()
        else:
            seq.generator.manual_seed(seq.sampling.seed)
    return seq.generator
