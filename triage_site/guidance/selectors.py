"""Reads of the protocol cards a request was shown, for its page and its live updates."""
from .selection import shown_cards


def card_views(references, texts=()):
    """The cards a request stores references to, with the steps it was shown, as the page and request.js show
    them."""
    return [card.as_dict() for card in shown_cards(references, texts)]
