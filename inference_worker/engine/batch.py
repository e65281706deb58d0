"""StepBatch: one step's tokens as a single flat batch, decode tokens first, then prefill chunks.

The model runner runs it in one forward pass: the first ``num_decodes`` rows attend through their
block tables, each prefill chunk to its own context. Only rows that end a sequence's known tokens are
sampled: every decode row, and the last row of a chunk that completes its (re)prefill.
"""

from __future__ import annotations

import numpy as np

from .model_runner import PrefillSeq
from .sequence import Sequence


class StepBatch:
    __slots__ = ("token_ids", "positions", "slots", "sampled_rows", "sampled_sequences",
                 "decode_block_tables", "decode_context_lens", "prefills", "prefill_context_slots")

    def __init__(self):
        self.token_ids: list[int] = []
        self.positions: list[int] = []
        self.slots: list[int] = []                # cache slot each row's K/V is written to
        self.sampled_rows: list[int] = []         # rows whose logits give a sequence its next token
        self.sampled_sequences: list[Sequence] = []
        self.decode_block_tables: list[list[int]] = []
        self.decode_context_lens: list[int] = []
        self.prefills: list[PrefillSeq] = []
        self.prefill_context_slots: list[np.ndarray | None] = []  # None: the chunk starts its context

    @property
    def num_decodes(self) -> int:
        return len(self.decode_context_lens)

    def add_decode(self, seq: Sequence, position: int, block_table: list[int], slot: int) -> None:
        """The token at `position` (the last one, not yet in the cache) predicts the next."""
        assert not self.prefills, "decode rows come before prefill rows"
        self.sampled_rows.append(len(self.token_ids))
        self.sampled_sequences.append(seq)
        self.token_ids.append(seq.token_ids[position])
        self.positions.append(position)
        self.slots.append(slot)
        self.decode_block_tables.append(block_table)
        self.decode_context_lens.append(position + 1)

    def add_prefill(self, seq: Sequence, start: int, end: int, context_slots: np.ndarray) -> None:
        """Tokens start..end-1 of the sequence; context_slots are the slots of positions 0..end-1."""
        first_row = len(self.token_ids)
        self.token_ids.extend(seq.token_ids[start:end])
        self.positions.extend(range(start, end))
        self.slots.extend(context_slots[start:end].tolist())
        self.prefills.append(PrefillSeq(first_row, end - start, end))
        self.prefill_context_slots.append(None if start == 0 else context_slots)
        if end == len(seq.token_ids):  # the chunk completes the (re)prefill: its last row samples a token
            self.sampled_rows.append(first_row + end - start - 1)
            self.sampled_sequences.append(seq)
