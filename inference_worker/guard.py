"""The degeneration guard: notices, while an answer streams, that a small model has stopped saying
anything useful, so the worker can stop generating and withdraw the answer instead of showing it.

``check`` runs before each flush on the whole answer so far; it is cheap because it only reads the
words added since the last call (and a bounded tail for loops). ``check_finished`` adds the empty answer.

Given the key words of the protocol cards the prompt carried, the guard also holds an answer back until it
carries every key step of one card (``may_show``), and withdraws one that does not: at once when it has
named none of them after OFF_CARD_WORDS words, else when it ends. A small model that answers a choking baby
with condolences is worse than the card alone, and the card is already on screen.
Thresholds leave ordinary numbered instructions alone: list numbers are not words here, and only long
phrases (REPEAT_WORDS words) count as repeats, so "the", "and" or "Call 911" may recur freely.
"""

from __future__ import annotations

import re
from collections import Counter

REPEAT_WORDS = 6         # a phrase of this many words...
REPEAT_TIMES = 3         # ...seen this often is repeated text
LOOP_MAX_PERIOD = 120    # characters: longer cycles are repeated text, found by the phrase count
LOOP_MIN_PERIODS = 3     # the tail holds its period at least this often...
LOOP_MIN_CHARS = 48      # ...over at least this many characters (so "!!!" or "....." is not a loop)
ECHO_WORDS = 8           # words copied verbatim from the caller's report in a row
ECHO_LOCATION_TIMES = 2  # the full location quoted this often
OFF_CARD_WORDS = 60      # words without any of the cards' key steps: the answer is about something else

REPEATED_TEXT = "repeated text"
LOOP = "a loop"
ECHO = "echo of the caller's report"
EMPTY = "empty answer"
OFF_CARD = "does not follow the protocol card"

_WORD = re.compile(r"[\w']+")


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _ngrams(seq: list[str], n: int):
    return (tuple(seq[i:i + n]) for i in range(len(seq) - n + 1))


class DegenerationGuard:
    """One answer's guard; built from the caller's report and location (what the answer must not echo) and
    each shown card's key-word groups (stems, any one of a group names that step; none: no card check)."""

    def __init__(self, report: str = "", location: str = "", card_key_words=()):
        self._report_phrases = set(_ngrams(words(report), ECHO_WORDS))
        location_words = tuple(words(location))
        self._location = location_words if len(location_words) >= 2 else None  # one word may recur by chance
        cards = [tuple(tuple(stem.lower() for stem in group) for group in groups) for groups in card_key_words]
        # a card without key words cannot be checked, so neither can the answer
        self._cards = cards if cards and all(cards) else []
        self._start_over()

    @property
    def may_show(self) -> bool:
        """The answer may be streamed: it carries every key step of a shown card (or there is no card check)."""
        return not self._cards or any(all(named) for named in self._named)

    def _start_over(self) -> None:
        self._scanned = 0                      # characters of the answer already split into words
        self._words: list[str] = []            # every complete word, numbers included (echo)
        self._phrase_words: list[str] = []     # the same without numbers (list markers, counts)
        self._phrases: Counter = Counter()
        self._most_repeated = 0
        self._echoed_report = False
        self._location_quotes = 0
        self._named = [[False] * len(groups) for groups in self._cards]  # per card, per key-word group

    def check(self, text: str) -> str | None:
        """Why the answer so far is degenerate, or None."""
        self._read_new_words(text)
        return self._loop(text) or self._repeated_text() or self._echo() or self._wandered_off()

    def check_finished(self, text: str) -> str | None:
        """As ``check``, for the final answer: also an answer with no words at all, or one that does not
        carry all key steps of any shown card."""
        if not _WORD.search(text):
            return EMPTY
        reason = self.check(text + "\n")  # the last word is complete now
        if reason is None and not self.may_show:
            return OFF_CARD
        return reason

    # ------------------------------------------------------------------ incremental words
    def _read_new_words(self, text: str) -> None:
        """Take in the complete words added since the last call; the word still being written waits."""
        if len(text) < self._scanned:  # the decoded text was rewritten (rare): read it again
            self._start_over()
        end = len(text)
        while end > self._scanned and (text[end - 1].isalnum() or text[end - 1] in "'_"):
            end -= 1
        for word in words(text[self._scanned:end]):
            self._add_word(word)
        self._scanned = end

    def _add_word(self, word: str) -> None:
        self._words.append(word)
        for groups, named in zip(self._cards, self._named):
            for index, group in enumerate(groups):
                if not named[index] and word.startswith(group):
                    named[index] = True
        if tuple(self._words[-ECHO_WORDS:]) in self._report_phrases:
            self._echoed_report = True
        if self._location and tuple(self._words[-len(self._location):]) == self._location:
            self._location_quotes += 1
        if not word.isdigit():
            self._phrase_words.append(word)
            if len(self._phrase_words) >= REPEAT_WORDS:
                phrase = tuple(self._phrase_words[-REPEAT_WORDS:])
                self._phrases[phrase] += 1
                self._most_repeated = max(self._most_repeated, self._phrases[phrase])

    # ------------------------------------------------------------------ the rules
    def _repeated_text(self) -> str | None:
        if self._most_repeated >= REPEAT_TIMES:
            return REPEATED_TEXT
        return None

    @staticmethod
    def _loop(text: str) -> str | None:
        """The tail is one short stretch of characters over and over."""
        tail = text[-(LOOP_MAX_PERIOD * (LOOP_MIN_PERIODS + 1) + 64):].rstrip()
        for period in range(1, LOOP_MAX_PERIOD + 1):
            span = max(period * LOOP_MIN_PERIODS, LOOP_MIN_CHARS)  # the periodic tail must be this long
            if span > len(tail):
                break
            if tail[-(span - period):] == tail[-span:-period]:  # each character equals the one a period back
                return LOOP
        return None

    def _echo(self) -> str | None:
        if self._echoed_report or self._location_quotes >= ECHO_LOCATION_TIMES:
            return ECHO
        return None

    def _wandered_off(self) -> str | None:
        if self._cards and len(self._words) >= OFF_CARD_WORDS and not any(map(any, self._named)):
            return OFF_CARD
        return None
