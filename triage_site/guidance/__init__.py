"""Protocol cards: pre-arrival instructions a dispatcher reads aloud, chosen from the classifier's findings.

The card on screen is the first and always-available answer; the language model only tailors it.
The cards are data (data/guidance/cards.toml); a malformed card stops the start with its id and the reason."""
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "guidance"
