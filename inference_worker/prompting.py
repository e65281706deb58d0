"""How a caller's free text becomes the model's prompt."""
import unicodedata

SYSTEM_PROMPT = (
    "You support an emergency medical dispatcher. Read the caller's report and give short, "
    "numbered, practical instructions the dispatcher can relay now, most important first. "
    "Say when to send an ambulance immediately. Do not invent facts."
)


GROUNDING = (
    "The dispatcher is already reading the protocol card below to the caller. Tailor its steps to this "
    "caller in a few short numbered lines. Never contradict the card."
)


def system_text(cards=()):
    """The system prompt, then each card: the part many requests share, so the engine's prefix cache
    serves it once for them all."""
    parts = [SYSTEM_PROMPT]
    for card in cards:
        steps = "\n".join(f"{number}. {step}" for number, step in enumerate(card["steps"], start=1))
        parts.append(f"{GROUNDING}\nProtocol card: {card['title']}\n{steps}")
    return "\n\n".join(parts)


def visible(text):
    """The text without invisible format characters (zero-width spaces, Unicode tag characters): what the
    dispatcher sees is all the model reads, so nothing hidden in a report can instruct it."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def build_prompt_ids(tokenizer, text, location="", cards=()):
    """The prompt's token ids: system text (with the protocol cards shown), then the caller's report."""
    text, location = visible(text), visible(location)
    report = text if not location else f"{text}\nLocation: {location}"
    system = system_text(cards)
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system}, {"role": "user", "content": report}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return list(ids)
    return tokenizer(f"{system}\n\nCaller: {report}\n\nDispatcher guidance:\n")["input_ids"]


def grounded_prompt_ids(tokenizer, text, location, cards, longest):
    """(prompt ids, the cards in it): every card when the prompt fits in `longest` tokens, else the strongest
    ones that fit (cards come strongest first), at least one. The dispatcher sees every card on the screen
    either way; a request is not refused because three protocols will not fit beside a long report."""
    cards = list(cards)
    count = len(cards)
    prompt_ids = build_prompt_ids(tokenizer, text, location, cards)
    while len(prompt_ids) > longest and count > 1:
        count -= 1
        prompt_ids = build_prompt_ids(tokenizer, text, location, cards[:count])
    return prompt_ids, cards[:count]


def shared_prefix_ids(tokenizer, cards=()):
    """The leading token ids of every prompt grounded in exactly these cards: what two different reports'
    prompts have in common (the system text and the cards, up to where the report begins)."""
    first = build_prompt_ids(tokenizer, "a", cards=cards)
    second = build_prompt_ids(tokenizer, "b", cards=cards)
    length = 0
    while length < min(len(first), len(second)) and first[length] == second[length]:
        length += 1
    return first[:length]


class AnswerText:
    """Decodes the growing answer and yields only what is new, so streaming never repeats text."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self.token_ids = []
        self.text = ""

    def extend(self, new_token_ids):
        self.token_ids.extend(new_token_ids)
        decoded = self._tokenizer.decode(self.token_ids, skip_special_tokens=True)
        # Hold back an incomplete multi-byte character until its last byte arrives.
        if decoded.endswith("\ufffd"):
            return ""
        delta = decoded[len(self.text):] if decoded.startswith(self.text) else decoded
        self.text = decoded
        return delta
