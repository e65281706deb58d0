"""The protocol card library: loaded once, validated field by field, so a bad card fails at start."""
import tomllib
from dataclasses import dataclass

from . import DATA_DIR

CARDS_PATH = DATA_DIR / "cards.toml"
AGES = ("adult", "child", "infant")
LEVELS = range(5)
# Fallback cards: chosen only when no specific card fits the request's level.
FALLBACKS = {0: "general_emergency", 1: "general_emergency", 2: "urgent_care", 3: "self_care", 4: "self_care"}


class CardsFileError(ValueError):
    """A card that cannot be shown to a dispatcher: the message names the card and what is wrong."""


@dataclass(frozen=True)
class Triggers:
    findings: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    # Red-flag rules that trigger the card as a finding does, so the learned head may overrule them: a rule
    # that raises urgency rightly can still be too broad to name a card ("slurring" in a hypothermic or a
    # hypoglycaemic caller raises the level, but is not a stroke).
    overrulable_rules: tuple[str, ...] = ()

    @property
    def all_rules(self):
        """Every rule that triggers the card, whether or not the head may overrule it."""
        return (*self.rules, *self.overrulable_rules)


TRIGGER_KEYS = tuple(Triggers.__dataclass_fields__)


@dataclass(frozen=True)
class Card:
    id: str
    title: str
    version: int
    levels: tuple[int, ...]
    send_help_now: bool
    ages: tuple[str, ...]
    steps: tuple[str, ...]
    call_back_if: tuple[str, ...]
    guidelines: tuple[str, ...]
    key_words: tuple[tuple[str, ...], ...]
    triggers: Triggers
    supersedes: tuple[str, ...] = ()  # cards this one replaces when both fit (CPR over the recovery position)

    def reference(self):
        """What a request stores about a card it was shown (MedicalRequest.cards), what the board reads."""
        return {"id": self.id, "version": self.version, "title": self.title, "send_now": self.send_help_now}

    def text(self):
        """The words of this version, stored with the request beside its reference (MedicalRequest.card_texts), so
        that its page and its answer's prompt keep what was read out after the library moves to a newer version."""
        return {"id": self.id, "version": self.version, "levels": list(self.levels), "steps": list(self.steps),
                "call_back_if": list(self.call_back_if), "guidelines": list(self.guidelines),
                "key_words": [list(group) for group in self.key_words]}

    @classmethod
    def from_stored(cls, reference, text):
        """The card as a request stored it, for showing it again (not for choosing cards: no triggers). Raises
        KeyError, TypeError or ValueError on a malformed reference or text."""
        def strings(key):
            value = text.get(key) or []
            if not isinstance(value, list):
                raise TypeError(f"{key} must be a list")
            return tuple(str(item) for item in value)

        return cls(id=str(reference["id"]), title=str(reference["title"]), version=int(reference["version"]),
                   levels=tuple(int(level) for level in strings("levels")), send_help_now=bool(reference["send_now"]),
                   ages=(), steps=strings("steps"), call_back_if=strings("call_back_if"),
                   guidelines=strings("guidelines"),
                   key_words=tuple(tuple(str(word) for word in group) for group in text.get("key_words") or []),
                   triggers=Triggers())

    def for_prompt(self):
        """What the inference worker needs: the steps to ground the answer in, the key words to check it by."""
        return {"id": self.id, "title": self.title, "steps": list(self.steps),
                "key_words": [list(group) for group in self.key_words]}

    def as_dict(self):
        return {**self.reference(), "levels": list(self.levels), "steps": list(self.steps),
                "call_back_if": list(self.call_back_if), "guidelines": list(self.guidelines)}


def _strings(entry, key, *, required=True, lower=False):
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValueError(f"{key} must be a list of non-empty strings")
    if required and not value:
        raise ValueError(f"{key} must not be empty")
    return tuple(item.strip().lower() if lower else item.strip() for item in value)


def _card(entry):
    title, version = entry.get("title"), entry.get("version")
    if not isinstance(title, str) or not title.strip() or len(title) > 80:
        raise ValueError("title must be a non-empty string of at most 80 characters")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError("version must be a whole number from 1")
    levels = entry.get("levels")
    if not isinstance(levels, list) or not levels or any(level not in LEVELS for level in levels):
        raise ValueError("levels must list urgency levels 0 to 4")
    if not isinstance(entry.get("send_help_now"), bool):
        raise ValueError("send_help_now must be true or false")
    ages = _strings(entry, "ages")
    if any(age not in AGES for age in ages):
        raise ValueError(f"ages must be among {', '.join(AGES)}")
    key_words = entry.get("key_words", [])
    if not isinstance(key_words, list) or not all(isinstance(group, list) and group and
                                                   all(isinstance(word, str) and word for word in group)
                                                   for group in key_words):
        raise ValueError("key_words must be a list of non-empty lists of words")
    triggers = entry.get("triggers", {})
    if not isinstance(triggers, dict):
        raise ValueError("triggers must be a table")
    unknown_keys = sorted(set(triggers) - set(TRIGGER_KEYS))
    if unknown_keys:
        raise ValueError(f"triggers has unknown keys {', '.join(unknown_keys)} (known: {', '.join(TRIGGER_KEYS)})")
    return Card(
        id=entry["id"], title=title.strip(), version=version, levels=tuple(sorted(levels)),
        send_help_now=entry["send_help_now"], ages=ages, steps=_strings(entry, "steps"),
        call_back_if=_strings(entry, "call_back_if", required=False), guidelines=_strings(entry, "guidelines"),
        key_words=tuple(tuple(word.lower() for word in group) for group in key_words),
        triggers=Triggers(*(_strings(triggers, key, required=False, lower=key == "words")
                            for key in TRIGGER_KEYS)),
        supersedes=_strings(entry, "supersedes", required=False),
    )


def load_cards(path=CARDS_PATH):
    """Every card in the file, by id, in file order. Raises CardsFileError naming the card and the fault."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CardsFileError(f"cannot read the protocol cards {path}: {exc}") from exc
    cards = {}
    for number, entry in enumerate(data.get("card", []), start=1):
        card_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(card_id, str) or not card_id.isidentifier():
            raise CardsFileError(f"{path}: card number {number} needs an id made of letters, digits and _")
        if card_id in cards:
            raise CardsFileError(f"{path}: card {card_id!r} appears twice")
        try:
            cards[card_id] = _card(entry)
        except (ValueError, TypeError) as exc:
            raise CardsFileError(f"{path}: card {card_id!r}: {exc}") from exc
    missing = sorted(set(FALLBACKS.values()) - set(cards))
    if missing:
        raise CardsFileError(f"{path}: the fallback cards {', '.join(missing)} are missing")
    for card in cards.values():
        unknown = [other for other in card.supersedes if other not in cards]
        if unknown:
            raise CardsFileError(f"{path}: card {card.id!r}: supersedes unknown cards {', '.join(unknown)}")
    return cards


def check_references(cards, finding_ids, rule_names):
    """Trigger findings and rules must exist, or a card would silently never be chosen."""
    for card in cards.values():
        unknown = [f for f in card.triggers.findings if f not in finding_ids]
        unknown += [r for r in card.triggers.all_rules if r not in rule_names]
        if unknown:
            raise CardsFileError(f"card {card.id!r}: unknown triggers {', '.join(unknown)}")
