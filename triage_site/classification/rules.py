"""Red-flag safety rules. They can only make a request more urgent, never less.

`red_flags(text)` returns a `RuleResult` with the most urgent level any rule forces (0 or 1)
and a human-readable reason, or level None when nothing fired.

Matching is on a normalised text (lower case, apostrophes dropped, common misspellings
folded). A finding is ignored when it is negated within its own clause ("no chest pain",
"not unresponsive, talking now", "denies suicidal thoughts"); a clause ends at . , ; : ! ?
"but" and "however". Loss-of-consciousness findings are also ignored when the text says the
person has come round ("awake and talking", "came round", "fine now").
Patterns that already contain a negation ("not breathing", "can't breathe") are red flags
themselves and are not subject to the negation check.
"""
import re
from dataclasses import dataclass, field

# Misspellings and shorthand folded before matching (whole words).
_FOLD = {
    "breathin": "breathing", "breething": "breathing", "breahting": "breathing", "breating": "breathing",
    "breath": "breathe", "breeth": "breathe", "brething": "breathing",
    "unresponsve": "unresponsive", "unrepsonsive": "unresponsive", "unresponsiv": "unresponsive",
    "unresposive": "unresponsive", "unconcious": "unconscious", "unconsious": "unconscious",
    "unconscience": "unconscious", "concious": "conscious", "seizer": "seizure", "siezure": "seizure",
    "seisure": "seizure", "bleading": "bleeding", "bleedin": "bleeding", "chocking": "choking",
    "chokeing": "choking", "chesst": "chest", "chst": "chest", "pian": "pain", "diabetc": "diabetic",
    "diabetik": "diabetic", "alergic": "allergic", "swolen": "swollen", "swollon": "swollen",
    "colapsed": "collapsed", "collasped": "collapsed", "puls": "pulse", "strok": "stroke",
    "pregant": "pregnant", "pregnat": "pregnant", "anaphalactic": "anaphylactic",
    "anafylactic": "anaphylactic", "anaphylaxsis": "anaphylaxis", "asma": "asthma", "asthama": "asthma",
    "overdossed": "overdosed", "odd": "overdosed", "od": "overdose", "suicidle": "suicidal",
    "sucidal": "suicidal", "sudenly": "suddenly", "hedache": "headache", "temprature": "temperature",
    "vomitting": "vomiting", "vommiting": "vomiting", "cpr": "cpr", "resus": "cpr",
    "cant": "cannot", "can not": "cannot", "wont": "will not", "isnt": "is not", "doesnt": "does not",
    "arent": "are not", "wasnt": "was not", "didnt": "did not", "hes": "he is", "shes": "she is",
    "u": "you", "pt": "patient",
}
_PHRASE_FOLD = {"head ache": "headache", "stomach ache": "stomachache", "can not": "cannot",
                "wont wake": "will not wake", "cpr in progress": "cpr"}
_NEGATORS = r"(?:no|not|denies|denied|without|never|nor|negative for|free of|none)"
_CLAUSE_BREAK = re.compile(r"[.,;:!?]|\bbut\b|\bhowever\b|\bnow\b")
_CAME_ROUND = re.compile(r"\b(awake and talking|talking now|came round|come round|came to|woke up straight|"
                         r"fine now|ok now|alert now|now awake|now alert|is alert|talking normally)\b")


@dataclass(frozen=True)
class Rule:
    name: str
    level: int
    pattern: re.Pattern
    reason: str
    negatable: bool = True
    consciousness: bool = False  # suppressed when the text says the person has come round
    requires: re.Pattern | None = None  # a second finding anywhere in the text (risk factors, age)


def _rule(name, level, pattern, reason, **kw):
    if "requires" in kw and isinstance(kw["requires"], str):
        kw["requires"] = re.compile(kw["requires"])
    return Rule(name, level, re.compile(pattern), reason, **kw)


RULES = [
    # ---- level 0: immediate threat to life ----
    _rule("not_breathing", 0, r"\b(not breathing|is not breathing|no breathing\b(?! (problems?|difficult\w*|issues?|trouble|concerns?))|stopped breathing|"
          r"no breath(e|s)?\b|cannot breathe|not able to breathe|unable to breathe|can ?not get (any )?air|"
          r"barely breathing|hardly breathing|gasping|agonal|fighting for (air|breath)|cannot (talk|speak) at all|"
          r"chest (is )?sucking in)", "not breathing / cannot breathe", negatable=False),
    _rule("arrest", 0, r"\b(cardiac arrest|heart (has )?stopped|no pulse|pulseless|doing cpr|started cpr|cpr)\b",
          "cardiac arrest / no pulse / CPR in progress", negatable=False),
    _rule("unresponsive", 0, r"\b(unresponsive|unconscious|not responding|not respond|does not respond|"
          r"will not wake|cannot wake|can ?not wake|won't wake|not waking|out cold|not moving\b(?! (his|her|my|their|the|its) )|"
          r"passed out and not|knocked out and not|(gone|is|went|going|totally|all) (floppy|limp))\b",
          "unresponsive / unconscious", consciousness=True),
    _rule("choking", 0, r"\b(choking|choked|something stuck in (his|her|their|my) throat)\b", "choking"),
    _rule("blue", 0, r"\b((turning|going|gone|lips|face|is) (blue|grey|gray)|cyanos)", "cyanosis (turning blue / grey)"),
    _rule("severe_bleeding", 0, r"\b((bleeding|bleed) (heavily|a lot|badly|profusely|everywhere)|heavy bleeding|"
          r"massive bleed|spurting|pouring (out )?blood|blood (is )?(everywhere|pouring|spurting)|"
          r"(bleeding|blood).{0,30}(will not|cannot|does not) stop|stabbed|gunshot|shot in)",
          "severe bleeding / penetrating wound"),
    _rule("anaphylaxis", 0, r"\b(anaphyla\w*|throat (is )?(closing|swelling|tight)|(tongue|lips?|face) "
          r"(is |are )?(swelling|swollen)|epi-?pen|adrenaline pen)", "anaphylaxis / airway swelling"),
    _rule("status_seizure", 0, r"\b((seizure|fitting|fit|fits|convuls\w*)\b.{0,40}\b(not stopping|will not stop|"
          r"won't stop|over \d+ min|for \d+ min|\d+ minutes|non ?stop|one after another|ages)|status epilepticus|"
          r"(seizure|fit)s? (without|not) waking)", "prolonged / repeated seizures"),
    _rule("drowning", 0, r"\b(drown\w*|under ?water|face down in)", "drowning"),
    _rule("hanging", 0, r"\b(hang(ing|ed)? (him|her|them|my)sel(f|ves)|found .{0,20}hanging|cut (him|her|them) down|"
          r"by hanging|strangl\w*)", "hanging / strangulation", negatable=False),
    _rule("major_trauma", 0, r"\b(hit by a (car|bus|lorry|truck|train)|fell from (the )?(\w+ )?(floor|roof|"
          r"scaffold\w*|height|ladder)|rolled over|trapped|crash\w*.{0,60}(unconscious|not moving))",
          "major trauma mechanism"),

    # ---- level 1: high risk or severe distress ----
    _rule("chest_pain_risk", 1, r"\b(chest (pain|pressure|tightness|feels (heavy|tight))|(crushing|tight|central|"
          r"heavy) (chest|pain in (the|his|her|my) chest)|elephant (sitting )?on (his|her|my) chest)",
          "chest pain with cardiac risk factors",
          requires=r"\b(diabet\w*|smok\w*|heart (attack|disease|problem|condition)|angina|stent|bypass|"
                   r"blood pressure|hypertension|cholesterol|sweat\w*|clammy|left arm|arm|jaw|crushing|"
                   r"elephant|heavy|([5-9]\d|1[01]\d) ?(yo|y/o|years?|yrs?)\b|(is|aged|male|female|m|f),? ([5-9]\d|1[01]\d)\b)"),
    _rule("stroke", 1, r"\b(stroke|face (is )?(drooping|droopy|lopsided)|droop\w*|slurr\w*|(mouth|face|smile) "
          r"(is )?lopsided|one side (of (his|her|their|the) (body|face) )?(is )?(weak|numb)|"
          r"(sudden(ly)?|new) (weakness|numbness)|cannot move (his|her|their|my) (right|left) (arm|leg)|"
          r"(arm|leg) (is )?(weak|numb)|unable to speak|talking nonsense|cannot speak properly)",
          "stroke signs (face / arm / speech)"),
    _rule("suicidal", 1, r"\b(suicid\w*|kill (him|her|them|my)sel(f|ves)|end(ing)? (his|her|their|my) life|"
          r"end it\b|want(s)? to die|do not want to be alive|not want to (be alive|live)|goodbye (message|note|letter)|"
          r"jump off|take all (my|his|her) (tablets|pills)|cannot go on|self[- ]harm)", "suicidal intent / self-harm"),
    _rule("overdose", 1, r"\b(overdos\w*|took (\d+|a lot of|too many|a handful of|all)\b.{0,30}(pills|tablets|"
          r"paracetamol|meds|medic\w*|antidepressants?|insulin|painkillers?)|swallowed (a |the )?(whole )?(bottle|handful|packet|lot)|"
          r"(drank|swallowed|ate) (some )?(bleach|cleaner|poison|antifreeze|weed ?killer)|poison\w*)",
          "overdose / poisoning"),
    _rule("severe_asthma", 1, r"\b(inhaler (is )?(not|did not|does not) help\w*|(not|no) help(ing)? from (the )?"
          r"inhaler|done nothing|(only )?(say|speak\w*|talk\w*) (in )?(a few|few|short) (words|sentences)|"
          r"cannot finish a sentence|struggling to breathe)", "severe breathing difficulty"),
    _rule("infant_fever", 1, r"\b((newborn|[1-9] (week|wk)s?|1[0-2] (week|wk)s?|[1-2] (month|mth)s?) (old )?"
          r"(baby |has |with |is )?.{0,40}(fever|temperature|temp|hot|38|39|40))",
          "fever in an infant under 3 months"),
    _rule("sepsis", 1, r"\b(non[- ]?blanching|(rash|spots).{0,30}(does not|doesnt|not) fade|"
          r"mottled|meningitis|sepsis|septic)", "possible sepsis / meningitis"),
    _rule("stiff_neck_fever", 1, r"\b(stiff neck|neck is stiff)", "stiff neck with fever / headache / rash",
          requires=r"\b(fever|temperature|temp|burning up|headache|rash|vomit\w*|light)"),
    _rule("confusion", 1, r"\b(new(ly)? confus\w*|suddenly confused|very confused|confused|not making sense|"
          r"acting drunk|repeating (him|her|them)self)", "new confusion / altered mental state",
          consciousness=False),
    _rule("thunderclap", 1, r"\b(worst headache|thunderclap|(sudden|explosive) (severe |explosive )?headache|"
          r"headache.{0,30}(out of nowhere|came on suddenly))", "sudden severe headache"),
    _rule("pregnancy", 1, r"\b(pregnant|weeks? pregnant)\b.{0,80}\b(bleed\w*|pain|faint|cord|waters)|"
          r"\bcord (is )?(hanging|out)", "pregnancy with bleeding / pain / cord"),
    _rule("head_anticoag", 1, r"\b(warfarin|apixaban|rivaroxaban|edoxaban|dabigatran|blood thinners?|anticoag\w*)\b",
          "head injury or bleeding on anticoagulants",
          requires=r"\b(head|fall|fell|bleed\w*|knock\w*|bang\w*)"),
    _rule("hypoglycaemia", 1, r"\b(sugar (is |reading |of )?(really |very )?(low|[0-2](\.\d)?\b|lo\b)|"
          r"glucose (is |of )?[0-2](\.\d)?\b|hypo\b|hypoglyc\w*)", "low blood sugar"),
    _rule("torsion", 1, r"\b(testic\w*|scrot\w*|balls)\b", "testicular pain (possible torsion)",
          requires=r"\b(sudden\w*|severe|agonis\w*|very bad|vomit\w*)"),
    _rule("aortic", 1, r"\b(tearing|ripping|aneurysm)\b", "tearing pain / aneurysm"),
    _rule("faint_chest", 1, r"\bchest (pain|pressure|tightness)", "collapse with chest pain",
          requires=r"\b(collapsed|passed out|fainted|blacked out)\b"),
]


@dataclass
class RuleResult:
    level: int | None = None
    reasons: list = field(default_factory=list)
    fired: list = field(default_factory=list)

    @property
    def reason(self):
        return "; ".join(self.reasons)


def normalise(text):
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"(\w)'(\w)", r"\1\2", text)  # can't -> cant, won't -> wont
    text = text.replace("won't", "will not")
    for phrase, folded in _PHRASE_FOLD.items():
        text = re.sub(rf"\b{phrase}\b", folded, text)
    words = re.split(r"(\W+)", text)
    folded = [_FOLD.get(word, word) for word in words]
    return re.sub(r"\s+", " ", "".join(folded)).strip()


def _negated(norm, start):
    """True when a negator sits in the same clause, within five words before the match."""
    before = norm[:start]
    clause = _CLAUSE_BREAK.split(before)[-1]
    window = " ".join(clause.split()[-5:])
    return re.search(rf"\b{_NEGATORS}\b", window) is not None


def red_flags(text):
    """The most urgent level forced by red-flag findings in `text`, with reasons."""
    norm = normalise(text)
    came_round = _CAME_ROUND.search(norm) is not None
    result = RuleResult()
    for rule in RULES:
        for match in rule.pattern.finditer(norm):
            if rule.negatable and _negated(norm, match.start()):
                continue
            if rule.consciousness and came_round:
                continue
            if rule.requires is not None and not _requirement_met(rule, norm):
                continue
            result.fired.append(rule.name)
            result.reasons.append(f"{rule.reason} (\u201c{match.group(0).strip()}\u201d)")
            result.level = rule.level if result.level is None else min(result.level, rule.level)
            break
    return result


def _requirement_met(rule, norm):
    for match in rule.requires.finditer(norm):
        if not _negated(norm, match.start()):
            return True
    return False


def apply_rules(model_level, rule_level):
    """Rules can only raise urgency: the result is never less urgent than the model's level."""
    if rule_level is None:
        return model_level
    if model_level is None:
        return rule_level
    return min(model_level, rule_level)
