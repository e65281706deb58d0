"""The text as the classifier reads it: what a person sees on the screen, not the code points behind it.

Invisible characters (zero-width spaces and joiners, the soft hyphen, Unicode tag characters) and look-alike
letters from other scripts (a Cyrillic "о" in "nоt breathing") leave a call looking the same to the dispatcher
while its words stop matching the red-flag rules and the finding library. The stored text is kept as typed;
only what the classifier and the card selection read is made plain here, with a call-taker's yes-or-no questions
read together with their answers (answers.py)."""
import re
import unicodedata

from .answers import as_statements

# Cyrillic and Greek letters drawn like Latin ones (Unicode's confusables, the common lower-case subset).
_LOOK_ALIKES = str.maketrans("аеорсухіјѕԁһӏԛԝαορτυνιкмт", "aeopcyxijsdhlqwaoptuvikmt")
_LATIN = re.compile(r"[a-z]", re.I)
_FRACTION = re.compile(r"([\u00bc-\u00be\u2150-\u215e])")  # NFKC would make "2½" read "21⁄2"
_WORD = re.compile(r"\w+")


def readable(text):
    """NFKC (full-width and compatibility forms to plain letters), invisible format characters removed,
    look-alike letters mapped to Latin in words that also hold Latin letters (a Russian word stays Russian), and
    answered questions read as statements. Reading a text twice changes nothing more."""
    text = "".join(piece if _FRACTION.fullmatch(piece) else unicodedata.normalize("NFKC", piece)
                   for piece in _FRACTION.split(text))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return as_statements(_WORD.sub(_latin_if_mixed, text))


def _latin_if_mixed(match):
    word = match.group(0)
    if not _LATIN.search(word) or word.isascii():
        return word
    return word.translate(_LOOK_ALIKES)
