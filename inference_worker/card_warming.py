"""Protocol cards kept warm in the prefix cache, so that no caller pays for a card's ~300 tokens of prefill.

While the engine is idle the worker prefills each card's shared prompt prefix (the system prompt and the card, up
to where the report begins), most urgent first, one card per idle iteration, and keeps it
(`Engine.keep_prefix`): the cache evicts kept blocks only after every other cached block, so the blocks of
finished requests go first, then the cards, the least urgent first. Warming stops while the blocks neither in use
nor kept would no longer hold one request of the longest length, so the first arrival evicts no card. Once a
load has passed, the cards it evicted are warmed again the next time the engine is idle.
"""
import logging
import time

from scheduler import blocks_for

from .prompting import shared_prefix_ids

logger = logging.getLogger(__name__)


class CardWarmer:
    def __init__(self, engine, tokenizer, cards):
        """`cards`: as the prompt shows them, most urgent first."""
        self.engine = engine
        self._prefixes = [(card["id"], shared_prefix_ids(tokenizer, [card])) for card in cards]
        self._to_warm = list(self._prefixes)
        self._look_again = False
        self._not_warmed_logged = 0  # a small pool leaves the same cards out after every load: say so once

    @property
    def pending(self):
        """Work for an idle iteration: cards to warm, or a look at what a load evicted."""
        return bool(self._to_warm) or self._look_again

    def waiting(self):
        """The ids of the cards still to warm in this round."""
        return [card_id for card_id, _ in self._to_warm]

    def engine_ran(self):
        """A step ran, and may have evicted cards: look again once the engine is idle."""
        self._look_again = bool(self._prefixes)

    def warm_one(self, engine_busy):
        """One idle iteration: warm the next card (`engine_busy`: a context manager around the prefill)."""
        if not self._to_warm:
            self._look_again = False
            self._to_warm = [(card_id, prefix) for card_id, prefix in self._prefixes if not self._cached(prefix)]
            if not self._to_warm:
                self._not_warmed_logged = 0
                return
        card_id, prefix = self._to_warm.pop(0)
        if self._room_after(prefix) < blocks_for(self.engine.max_model_len, self.engine.config.kv_block_size):
            self._log_not_warmed(len(self._to_warm) + 1)
            self._to_warm.clear()
        else:
            started = time.monotonic()
            with engine_busy():
                cached = self.engine.warm_prefix(prefix)
            self.engine.keep_prefix(prefix)
            logger.info("prefix cache: card %s warmed, %d tokens in %.2f s", card_id, cached,
                        time.monotonic() - started)
        if not self._to_warm:
            self._most_urgent_evicted_last()

    def _log_not_warmed(self, count):
        if count != self._not_warmed_logged:
            logger.info("prefix cache: %d cards not warmed, the rest of the KV pool is kept for one longest request",
                        count)
        self._not_warmed_logged = count

    def _cached(self, prefix):
        size = self.engine.config.kv_block_size
        return self.engine.cached_prefix_tokens(prefix) == len(prefix) // size * size

    def _room_after(self, prefix):
        """KV blocks neither in use nor kept once `prefix`'s full blocks not yet cached are: free blocks, and
        cached ones a request may evict before any card."""
        stats, size = self.engine.stats(), self.engine.config.kv_block_size
        new_blocks = len(prefix) // size - self.engine.cached_prefix_tokens(prefix) // size
        return stats["kv_blocks_total"] - stats["kv_blocks_used"] - stats["kv_kept_blocks"] - new_blocks

    def _most_urgent_evicted_last(self):
        """Keep every cached card again, least urgent first, so that among the kept blocks the least urgent card
        is evicted first and a cardiac arrest's last, whatever order this round warmed them in."""
        for _, prefix in reversed(self._prefixes):
            self.engine.keep_prefix(prefix)
