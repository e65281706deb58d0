"""Writes the labelled urgency data set (train.jsonl, heldout.jsonl) from written scenarios.

Run from the repository root: python -m data.classifier.generate   (seeded: the output is reproducible)

Each scenario is one clinical situation at one level (Emergency Severity Index style, 0..4) with
an expected guidance-length bucket, written in several independent phrasings. Requests are built
from a phrasing, a subject ("my husband", "78 yo female"), a call-taker/caller frame, optional
extra context, and realistic noise (misspellings, no punctuation, shouting, shorthand).

Held-out split: the LAST phrasing in SCENARIOS of every scenario, plus a set of frames and subjects, are never
used for training. Held-out rows are built only from held-out phrasings and held-out frames, so
no held-out text shares its wording with a training text (they share the clinical situation).
"""
import json
import random
import re
from pathlib import Path

from triage_site.classification.length import BUCKET_TOKENS

HERE = Path(__file__).resolve().parent
SEED = 20261123

# Guidance-length buckets (tokens of the LLM's answer, triage_site/classification/length.py), a proxy set
# by hand per scenario: 0 short (reassurance, a referral), 1 medium (self-care steps), 2 long (first aid
# with checks), 3 very long (step-by-step CPR / choking / bleeding-control coaching).

MALE = [("my husband", "he", "his"), ("my dad", "he", "his"), ("a man in the street", "he", "his"),
        ("my son", "he", "his"), ("my grandad", "he", "his"), ("the patient (male, 54)", "he", "his"),
        ("my brother", "he", "his"), ("65 yo male", "he", "his"), ("my flatmate", "he", "his"),
        ("a customer in the shop", "he", "his"), ("my boyfriend", "he", "his"), ("pt (m, 40s)", "he", "his")]
FEMALE = [("my wife", "she", "her"), ("my mum", "she", "her"), ("a woman at the bus stop", "she", "her"),
          ("my daughter", "she", "her"), ("my nan", "she", "her"), ("78 y/o female", "she", "her"),
          ("my sister", "she", "her"), ("the lady next door", "she", "her"), ("my girlfriend", "she", "her"),
          ("pt (f 33)", "she", "her"), ("my colleague", "she", "her"), ("an elderly lady", "she", "her")]
# Subjects reserved for held-out rows.
HELD_SUBJECTS = {"my flatmate", "pt (m, 40s)", "my colleague", "an elderly lady", "my grandad", "the lady next door"}

# {c} is the complaint (a phrasing with its subject filled in).
TRAIN_FRAMES = [
    "{c}", "{c}.", "{C}. please send someone", "caller states {c}", "Caller reports {c}.",
    "hi, {c}, what do I do", "{C}!! need help now", "{c} - {x}", "{C}. {X}.", "pls help {c}",
    "{C}, {x}. what should we do?", "third party caller: {c}", "{c} {x}", "Hello. {C}. Thank you.",
]
HELD_FRAMES = [
    "{C} -- {x}", "ringing because {c}", "{c}?? {x}", "Dispatcher note: {c}; {x}.",
    "{C}. Not sure if this is serious.", "{c} ... please advise",
]

# Context that does not change the level (it goes into {x}).
CONTEXT = [
    "we are at home", "address is on the form", "I'm with {them} now", "happened about 10 min ago",
    "{he} is on blood pressure tablets", "no other medical problems that I know of", "started this morning",
    "we're in the car park", "{he} has asthma as a kid but fine since", "no allergies",
    "it's been going on a while", "I don't know what to do", "{he} lives alone, I found {them}",
    "we called the GP but no answer", "{he} takes metformin", "just got back from holiday",
]

# (id, level, length bucket, phrasings). The last phrasing of each scenario is held out.
# {w} subject, {he} pronoun, {his} possessive; phrasings without {w} are first person.
SCENARIOS = [
    # ---------------- level 0: immediate threat to life ----------------
    ("arrest", 0, 3, [
        "{w} collapsed and is not breathing",
        "{w} has no pulse and isn't breathing, I think it's a cardiac arrest",
        "{w} just dropped to the floor, {he}'s not breathing and going blue",
        "{w} went down, no pulse, no breath, someone started cpr",
        "found {w} on the floor, lips blue, no breathing at all"]),
    ("unresponsive", 0, 2, [
        "{w} is unresponsive and won't wake up",
        "{w} is unconscious, we can't wake {him}, breathing is very noisy",
        "{w} is out cold on the kitchen floor and doesn't respond when I shout",
        "cant wake {w} up, {he} is totally floppy and not responding"]),
    ("choking", 0, 3, [
        "{w} is choking on food and can't breathe",
        "{w} choked on a piece of meat, can't speak or cough, turning blue",
        "{w} has something stuck in {his} throat and can't get any air in",
        "{w} swallowed a sweet and is choking, making no sound"]),
    ("bleed", 0, 3, [
        "{w} is bleeding heavily from a deep cut on {his} leg, blood is spurting",
        "{w} cut {his} arm on glass, blood everywhere and it won't stop even with pressure",
        "massive bleeding from {his} thigh after a chainsaw accident, {w} is going pale",
        "{w} has been stabbed in the stomach and is bleeding a lot",
        "{w} fell through a window, huge gash on {his} neck pouring blood"]),
    ("anaphylaxis", 0, 3, [
        "{w} ate peanuts, {his} throat is closing and {his} lips are swelling up",
        "{w} was stung by a bee and now can't breathe, face very swollen",
        "anaphylactic reaction, {w} is wheezing, hives all over and tongue swelling",
        "{w} is allergic to shellfish, had prawns, now struggling to breathe and voice is hoarse, epipen used"]),
    ("seizure_long", 0, 2, [
        "{w} has been having a seizure for over 10 minutes and isn't stopping",
        "{w} is fitting and won't stop, it's been going on for ages and {he}'s turning blue",
        "{w} keeps having fits one after another without waking up in between",
        "status epilepticus? {w} convulsing non stop for 15 min"]),
    ("drowning", 0, 3, [
        "we pulled {w} out of the pool and {he} is not breathing",
        "{w} was underwater in the bath, limp and not responding",
        "near drowning at the lake, {w} is unconscious and barely breathing",
        "kid found face down in the pond, not moving"]),
    ("resp_failure", 0, 2, [
        "{w} can barely breathe, gasping, can't say a word and is turning grey",
        "{w} is struggling for every breath, lips going blue, {he}'s getting drowsy",
        "severe breathing difficulty, {w} is only able to gasp and is sweating and blue",
        "{w} is fighting for air, can't talk at all, {his} chest is sucking in"]),
    ("infant_limp", 0, 2, [
        "my 2 month old baby is limp and not responding",
        "our newborn has gone floppy and blue and isn't waking",
        "my baby stopped breathing for a bit and is now very pale and floppy",
        "6 week old, grey and unresponsive in the cot"]),
    ("major_trauma", 0, 3, [
        "{w} was hit by a car at speed, unconscious and bleeding from the head",
        "motorbike crash, {w} is lying in the road not moving and breathing strangely",
        "{w} fell from the third floor scaffolding and isn't responding",
        "car rolled over, driver trapped, unconscious with a head wound"]),
    ("hanging", 0, 3, [
        "found {w} hanging, we cut {him} down, {he}'s not breathing",
        "{w} tried to hang {himself}, {he} is unconscious",
        "{w} attempted suicide by hanging and is not responding"]),
    ("overdose_unconscious", 0, 2, [
        "{w} took a lot of pills and now is unconscious and breathing very slowly",
        "{w} overdosed on heroin, pinpoint pupils, barely breathing",
        "{w} swallowed a whole bottle of tablets and we can't wake {him}",
        "suspected opioid OD, {w} is blue and snoring, won't respond"]),

    # ---------------- level 1: high risk or severe distress ----------------
    ("chest_pain_risk", 1, 2, [
        "{w} has crushing chest pain going down {his} left arm, {he} is diabetic",
        "{w} has chest pain and is sweating, {he} had a heart attack before",
        "tight central chest pain for 30 minutes, {w} is 62 and smokes",
        "{w} says {his} chest feels heavy like an elephant sitting on it, {he} has high blood pressure",
        "chest pressure spreading to {his} jaw, {w} has a history of heart disease and feels sick"]),
    ("stroke", 1, 2, [
        "{w}'s face is drooping on one side and {his} speech is slurred",
        "{w} suddenly can't move {his} right arm and is talking nonsense",
        "I think {w} is having a stroke, {his} mouth is lopsided and {his} arm is weak",
        "{w} woke up unable to speak properly and one side of {his} body is numb",
        "sudden weakness in {his} left leg and arm and face droop, {w} is confused"]),
    ("suicidal", 1, 2, [
        "{w} says {he} wants to kill {himself} and has a knife",
        "{w} is talking about ending {his} life tonight and has pills saved up",
        "I don't want to be alive anymore, I have a plan to end it",
        "{w} sent a goodbye message and says {he} is going to jump off the bridge",
        "i'm going to take all my tablets tonight, I can't go on"]),
    ("overdose_awake", 1, 2, [
        "{w} took 30 paracetamol an hour ago but is awake and talking",
        "{w} swallowed a handful of {his} mum's sleeping tablets, still conscious but drowsy",
        "my toddler drank some bleach from under the sink",
        "{w} took too many of {his} antidepressants on purpose, awake for now"]),
    ("asthma_severe", 1, 2, [
        "{w} is having a bad asthma attack, inhaler not helping, can only say a few words",
        "{w}'s breathing is really bad, wheezing loudly, blue inhaler has done nothing",
        "asthmatic, struggling to breathe, speaking in short sentences, used the inhaler 10 times",
        "severe asthma attack, {w} can't finish a sentence and is getting tired"]),
    ("infant_fever", 1, 1, [
        "my 6 week old has a temperature of 38.5",
        "our 2 month old baby is hot with a fever and not feeding",
        "newborn with a fever of 38.2 and very sleepy",
        "baby 7 weeks has fever and a high pitched cry"]),
    ("sepsis", 1, 2, [
        "{w} has a high fever, is confused and has a rash that doesn't fade under a glass",
        "{w} is shivering, breathing fast, very confused and peeing very little, has a UTI",
        "{w} has a fever, a non blanching purple rash and a stiff neck",
        "after {his} operation {w} is burning up, heart racing, mottled skin and not making sense"]),
    ("thunderclap", 1, 2, [
        "{w} has the worst headache of {his} life that came on suddenly, and is vomiting",
        "{w} got a sudden explosive headache like being hit on the head, now neck is stiff",
        "worst ever headache out of nowhere, {w} says it's like a thunderclap",
        "sudden severe headache and now {w} can't look at the light and is being sick"]),
    ("pregnancy_bleed", 1, 2, [
        "{w} is 30 weeks pregnant and bleeding heavily with bad stomach pain",
        "{w} is pregnant and has sudden severe tummy pain and is bleeding",
        "pregnant, 8 weeks, sharp one-sided pain and feeling faint",
        "{w} is 35 weeks, waters broke and the cord is hanging out"]),
    ("head_injury_thinners", 1, 2, [
        "{w} hit {his} head in a fall and is on warfarin, now being sick",
        "{w} fell and banged {his} head, {he} is on blood thinners and getting drowsy",
        "head injury, on apixaban, vomited twice and seems confused",
        "{w} knocked out for a minute after hitting {his} head, now confused and repeating {himself}"]),
    ("hypo", 1, 2, [
        "{w} is diabetic, sugar is 2.1, very confused and sweaty",
        "{w}'s blood sugar is really low and {he} is not making sense, can't swallow the juice",
        "diabetic, acting drunk, shaky and clammy, sugar reading LO",
        "{w}'s diabetic and suddenly aggressive and confused, glucose 1.8"]),
    ("testicular", 1, 1, [
        "{w} is 14 and has sudden severe pain in one testicle and is vomiting",
        "my son woke up with agonising pain in his testicle, it's swollen",
        "teenage boy, sudden pain in the groin and balls, very bad, came on an hour ago"]),
    ("aaa_back", 1, 2, [
        "{w} is 70 with sudden tearing pain in {his} back and stomach and looks pale",
        "{w} has sudden ripping pain through to {his} back and is faint and clammy",
        "severe sudden stomach and back pain, {w} has an aneurysm being watched, feels dizzy"]),

    # ---------------- level 2: urgent, several resources ----------------
    ("abdo_pain", 2, 1, [
        "{w} has had stomach pain for 6 hours and keeps vomiting",
        "{w} has bad pain on the lower right side of {his} tummy, worse when walking, and feels sick",
        "severe abdominal pain since last night, can't keep water down",
        "{w} has pain in {his} belly that's getting worse and a temperature"]),
    ("hip_fall", 2, 1, [
        "{w} fell and can't get up, {his} hip hurts a lot and {his} leg looks shorter",
        "{w} slipped in the bathroom, {he} is awake and talking but can't stand, hip pain",
        "elderly fall, conscious and chatty, pain in the hip and can't bear weight",
        "{w} has fallen, not unconscious, just can't walk because of pain in the groin"]),
    ("pneumonia", 2, 1, [
        "{w} has a cough with green phlegm, a fever of 39 and is short of breath walking",
        "{w} has had a chest infection for days and is now breathless and achy with a high temperature",
        "fever, productive cough and pain when breathing in, {w} is 80",
        "{w} is coughing a lot, temp 38.9 and getting a bit breathless on the stairs"]),
    ("kidney_stone", 2, 1, [
        "{w} has agonising pain in {his} side going to {his} groin and blood in {his} pee",
        "{w} has had kidney stones before and the same severe flank pain is back, vomiting",
        "pain in the back under the ribs coming in waves, can't sit still"]),
    ("dehydration", 2, 1, [
        "{w} has had diarrhoea and vomiting for 3 days and is very weak and dizzy",
        "{w} can't keep anything down since yesterday, very little pee and dizzy when standing",
        "gastro for days, {w} is 85, weak and dry mouth, not eating or drinking",
        "toddler vomiting all day, hasn't had a wet nappy since morning"]),
    ("asthma_moderate", 2, 1, [
        "{w}'s asthma is worse today, the inhaler helps a bit, {he} can talk in full sentences",
        "{w} is wheezy and a bit short of breath, no chest pain, used the inhaler twice",
        "mild to moderate asthma flare, talking fine but chesty"]),
    ("head_injury_minor", 2, 1, [
        "{w} hit {his} head, wasn't knocked out, has a headache and was sick once",
        "{w} banged {his} head on a cupboard, awake and talking, a bit dizzy, vomited once",
        "bumped head playing football, not unresponsive, talking now but has a headache and feels sick"]),
    ("pyelo", 2, 1, [
        "{w} has burning when peeing, a fever and pain in {his} back",
        "{w} has a water infection that has got worse, now shivery with back pain",
        "uti symptoms with loin pain and a temperature of 38.6"]),
    ("diabetic_high", 2, 1, [
        "{w}'s blood sugar has been over 25 all day, {he} is thirsty and peeing loads but alert",
        "{w} is diabetic with high sugars and vomiting, breath smells fruity, still talking normally",
        "sugar high and ketones positive, feeling sick and tired"]),
    ("cellulitis", 2, 1, [
        "{w}'s leg is red, hot and swollen and {he} has a fever",
        "{w} has a spreading red area on {his} arm from a cut, now feels feverish",
        "infected wound, redness spreading fast and a temperature"]),
    ("syncope_ok", 2, 1, [
        "{w} fainted for a few seconds, came round straight away, no chest pain, feels ok now",
        "{w} passed out briefly at church, now awake and talking, a bit pale",
        "{w} blacked out for a moment on standing, breathing fine now and talking, no injuries"]),
    ("chest_pain_atypical", 2, 1, [
        "{w} is 25, fit and well, has sharp chest pain when {he} breathes in after a cold",
        "young person with chest wall pain that hurts when pressed, no breathing problems",
        "sharp pain in {his} side of chest when coughing, {w} is 19 and otherwise healthy"]),

    # ---------------- level 3: one resource ----------------
    ("laceration", 3, 1, [
        "{w} cut {his} finger chopping veg, bleeding has stopped but it's gaping",
        "{w} has a cut on {his} hand that probably needs stitches, bleeding controlled",
        "small deep cut on the knee from a fall, bleeding stopped with pressure",
        "gash on {his} forehead from the door, not bleeding much now, {w} is fine otherwise"]),
    ("ankle", 3, 1, [
        "{w} twisted {his} ankle playing football, it's swollen but {he} can just about walk",
        "{w} rolled {his} ankle on the stairs, bruised and sore",
        "sprained ankle? fell off the kerb, puffy and painful",
        "hurt {his} ankle at the gym, swollen and painful to put weight on"]),
    ("wrist", 3, 1, [
        "{w} fell on {his} outstretched hand and {his} wrist is sore and swollen",
        "{w} may have broken {his} wrist falling off a bike, fingers ok",
        "painful wrist after a fall, can move fingers, no other injuries"]),
    ("uti", 3, 0, [
        "burning when I pee and needing to go all the time, no fever",
        "{w} has cystitis symptoms, stinging when passing urine, otherwise well",
        "I think I have a water infection, going to the loo a lot, no back pain no temperature"]),
    ("earache", 3, 0, [
        "{w} has had earache since yesterday and a slight temperature",
        "my 4 year old has a sore ear and is pulling at it, eating and drinking fine",
        "ear pain and a bit of discharge, no fever"]),
    ("minor_burn", 3, 1, [
        "{w} burned {his} hand on the oven, a blister the size of a coin",
        "{w} spilt hot tea on {his} arm, red and blistered, small area",
        "small burn from the iron on {his} forearm, very sore"]),
    ("eye_foreign", 3, 1, [
        "{w} has something in {his} eye, it's red and watering, vision is ok",
        "got some grit in my eye, it's scratchy and won't come out",
        "{w} got sawdust in {his} eye, eye is sore but {he} can see fine"]),
    ("back_pain", 3, 0, [
        "{w} hurt {his} back lifting a box, can walk, no numbness",
        "lower back pain after gardening, no problems with pee or legs",
        "{w} has a sore back since yesterday, no fever, moving ok"]),
    ("rash_fever_child", 3, 0, [
        "my 3 year old has a rash and a mild fever but the rash fades under a glass and she's playing",
        "child with a temperature of 38 and a blanching rash, drinking well",
        "toddler spotty rash, slight temp, still running around"]),
    ("dog_bite", 3, 1, [
        "{w} was bitten by a dog on {his} hand, puncture wounds, bleeding stopped",
        "the neighbour's cat bit my finger, it's swollen a bit",
        "dog bite on the calf, small wound, not bleeding much"]),
    ("tooth", 3, 0, [
        "{w} has a bad toothache and {his} cheek is a little swollen, no trouble breathing",
        "broke my tooth, pain is bad, face is fine",
        "dental abscess i think, sore gum, no fever"]),

    # ---------------- level 4: non-urgent ----------------
    ("refill", 4, 0, [
        "I need a repeat prescription for my blood pressure tablets",
        "{w} has run out of {his} inhaler and needs a new prescription, {he} is fine",
        "can I get a refill of my contraceptive pill",
        "requesting a prescription renewal, nothing urgent"]),
    ("cold", 4, 0, [
        "I have a runny nose and a cough for two days, no chest pain, no shortness of breath",
        "{w} has a cold, blocked nose and sneezing, eating fine",
        "sniffles and a mild sore throat, otherwise fine",
        "just a head cold, no fever, no breathing problems"]),
    ("sore_throat", 4, 0, [
        "sore throat for 3 days, can swallow fine",
        "{w} has a scratchy throat and a mild cough, no fever",
        "throat has been sore since the weekend, no trouble breathing or swallowing"]),
    ("certificate", 4, 0, [
        "I need a sick note for work",
        "do I need a fit note for being off for a week with a back strain",
        "can I get a letter saying I was ill last week"]),
    ("med_question", 4, 0, [
        "can I take ibuprofen with my paracetamol",
        "I forgot to take my statin last night, should I take two today",
        "is it ok to drink alcohol on antibiotics",
        "question about when to take {his} tablets, {w} is well"]),
    ("old_rash", 4, 0, [
        "{w} has had an itchy rash on {his} elbows for weeks, not unwell",
        "dry patches of skin on my hands for a month, no other problems",
        "mild eczema flare, just itchy, no fever",
        "spotty itchy rash on {his} back for a while, no chest pain, feels fine"]),
    ("insect_bite", 4, 0, [
        "{w} got a mosquito bite that is itchy and a bit red, no swelling of the face",
        "small insect bite on the arm, itchy, no breathing problems",
        "bee sting on {his} finger, a little swollen, breathing fine and no rash"]),
    ("appointment", 4, 0, [
        "I want to book an appointment to have my mole checked",
        "how do I register with a GP",
        "want to change my appointment for the blood test next week",
        "need a routine check up, nothing wrong"]),
    ("minor_ache", 4, 0, [
        "I have had a mild headache since this morning, took paracetamol, feel ok",
        "{w} has aching muscles after the gym, no injury",
        "stiff neck from sleeping funny, no fever, no headache",
        "slight headache from not drinking enough, no vomiting no weakness"]),
    ("sunburn", 4, 0, [
        "{w} got sunburnt at the beach, red and sore but no blisters",
        "mild sunburn on my shoulders",
        "a bit burnt from the sun, pink skin, feeling fine"]),
    ("vaccine", 4, 0, [
        "when can my baby have her next vaccinations",
        "do I need a tetanus booster, I had one 8 years ago",
        "question about travel vaccines for Thailand"]),
]

# Extra phrasings with negations at lower levels, so that rules and head learn that a negated
# red flag is not a red flag. They behave like scenarios (last phrasing held out).
SCENARIOS += [
    ("negated_flags", 3, 0, [
        "{w} fell over, not unresponsive, talking now, has a graze on {his} knee",
        "no chest pain, no breathing problems, just a sore shoulder after a fall",
        "{w} is not unconscious, was dazed for a second after bumping {his} head, fine now and alert",
        "denies chest pain, has a cut on {his} thumb that needs looking at",
        "{w} is breathing fine, not choking, just coughing after swallowing water the wrong way, a small cut on the lip"]),
    ("negated_flags_mild", 4, 0, [
        "not bleeding, no pain, just want advice about a bruise",
        "{w} has no fever, no rash, no breathing problems, just tired for a few days",
        "no chest pain or shortness of breath, just asking about {his} blood pressure readings",
        "no suicidal thoughts, feeling a bit low and want to talk to someone about counselling"]),
]

# More training phrasings (added after the first measurement showed level 2-4 confusions on
# held-out phrasings). They are training-only; the held-out phrasing of each scenario is unchanged.
EXTRA_TRAIN = {
    "abdo_pain": ["{w} is doubled over with tummy pain and has been sick four times",
                  "{w} has constant pain in {his} abdomen since lunchtime, can't eat, feels hot",
                  "belly ache getting worse over the day, now vomiting bile"],
    "hip_fall": ["{w} tripped on the rug, {he} is alert but {his} leg is turned out and {he} can't get up",
                 "{w} had a fall in the garden, no head injury, but can't put any weight on {his} leg",
                 "found {w} on the floor this morning, talking to me, says {his} hip is agony"],
    "pneumonia": ["{w} has a temperature and a rattly chest, getting out of breath doing anything",
                  "chesty cough for a week, now feverish and breathing a bit faster than normal",
                  "{w} is 75, coughing up yellow sputum, high temp and off {his} food"],
    "kidney_stone": ["{w} is rolling around with pain in {his} side and has blood in {his} urine",
                     "loin to groin pain, very severe, comes and goes, vomited"],
    "dehydration": ["{w} has been vomiting since last night and can't even keep sips of water down",
                    "{w} has had the runs for three days, feels faint and hasn't peed today",
                    "stomach bug, vomiting and diarrhoea, very weak and thirsty"],
    "asthma_moderate": ["{w} is a bit wheezy, inhaler is helping, speaking in full sentences",
                        "asthma playing up, tight chest, reliever inhaler helps for a while",
                        "{w} has a cough and wheeze tonight, can talk normally, peak flow lower than usual"],
    "head_injury_minor": ["{w} fell off {his} bike and hit {his} head, no loss of consciousness, headache and vomited once",
                          "bang to the head at school, {he} is alert but has been sick and says {his} head hurts",
                          "{w} hit {his} head on the shelf, didn't black out, now has a bad headache and feels dizzy"],
    "pyelo": ["{w} has a kidney infection i think, fever, pain in {his} side and stinging when peeing",
              "water infection with shivers and pain in the lower back, temp 38.7",
              "{w} was on antibiotics for cystitis but now has a fever and back pain"],
    "diabetic_high": ["{w}'s sugar reads HI on the meter, {he} is alert but vomiting and very thirsty",
                      "type 1 diabetic with high blood sugar all day and tummy pain, talking normally",
                      "{w}'s glucose is 28 and {he} has ketones, feels sick"],
    "cellulitis": ["{w} has a red, hot, swollen foot and a fever since yesterday",
                   "redness spreading up {his} leg from an insect bite and {he} feels shivery",
                   "{w}'s cut has gone red and puffy with pus and {he} has a temperature"],
    "syncope_ok": ["{w} fainted in the queue, was only out for a few seconds, awake and alert now, no chest pain",
                   "{w} keeled over at the table but came round quickly, now talking and a bit shaky",
                   "passed out for a second after giving blood, awake and fine now but still pale"],
    "chest_pain_atypical": ["{w} is 22 and has a sharp pain in the chest that's worse when {he} moves {his} arm, breathing fine",
                            "sore chest wall after lifting weights, {w} is young and fit, no breathlessness",
                            "teenager with stabbing pain in the left side of the chest when breathing deeply, no other symptoms"],
    "laceration": ["{w} sliced {his} palm opening a tin, bleeding stopped, edges are apart",
                   "{w} cut {his} chin falling off the swing, bleeding has stopped, may need glue",
                   "deep-ish cut on the finger from a knife, wrapped up and not bleeding now"],
    "ankle": ["{w} went over on {his} ankle, swollen and bruised, can limp on it",
              "ankle injury from netball, sore and puffy, can wiggle toes",
              "{w} twisted {his} foot stepping off the bus, painful but walking"],
    "wrist": ["{w} fell off the trampoline onto {his} arm, wrist swollen, fingers pink and moving",
              "{w} slipped on ice and landed on {his} hand, sore wrist, no other injuries",
              "possible broken wrist, swollen and tender after a fall, otherwise fine"],
    "uti": ["{w} has stinging when peeing and is going a lot, no temperature, no back pain",
            "cystitis again, burning pee, no fever",
            "needing to wee all the time and it burns, otherwise well"],
    "earache": ["{w} has a painful ear since last night, mild temp, eating ok",
                "my son has earache after swimming, no fever, playing normally",
                "sore ear and muffled hearing for two days"],
    "minor_burn": ["{w} touched the hot pan, small blister on {his} finger",
                   "scalded {his} hand with boiling water, red and one blister, small area",
                   "steam burn on the wrist, red and stinging, about 2 cm"],
    "eye_foreign": ["{w} got shampoo in {his} eye, stinging, can see fine",
                    "there's an eyelash or something stuck in my eye, red and watery",
                    "{w} scratched {his} eye with a twig, sore and watering, vision ok"],
    "back_pain": ["{w} pulled {his} back at work, sore to bend, walking ok, no numbness",
                  "back twinge after moving furniture, no leg weakness, no bladder problems",
                  "my lower back hurts after a long drive, can move about"],
    "rash_fever_child": ["{w} is 5 with a slight temperature and a red rash that goes away when pressed, playing",
                         "toddler has chickenpox spots and a mild temp, drinking fine",
                         "kid has a rash and 37.9 temp, rash blanches, eating and playing"],
    "dog_bite": ["{w} got nipped by a dog on {his} ankle, small puncture, bleeding stopped",
                 "bitten on the hand by a cat, a bit red and sore",
                 "scratched and bitten by the neighbour's dog, small wounds, not bleeding now"],
    "tooth": ["{w} has toothache that is keeping {him} awake, no swelling of the face",
              "lost a filling, tooth hurts when eating",
              "{w} knocked out a baby tooth, gum bleeding a little"],
    "refill": ["{w} needs more of {his} regular tablets, has two days left",
               "repeat prescription please for my thyroid medication",
               "ran out of my antihistamines, need a new script"],
    "cold": ["{w} is snuffly with a cough for a few days, eating and drinking normally",
             "I've got a cold and a tickly cough, no fever",
             "blocked nose and a bit of a cough, feel fine otherwise"],
    "sore_throat": ["{w} has a sore throat and a hoarse voice, no fever, swallowing ok",
                    "throat is a bit sore since yesterday, drinking fine",
                    "mild sore throat and tired, no trouble breathing"],
    "certificate": ["need a doctor's note for my employer",
                    "my school needs a letter saying {w} was off sick",
                    "can you send me a medical certificate for last week"],
    "med_question": ["can {w} take {his} antibiotics with food",
                     "what is the right dose of calpol for a 4 year old",
                     "I missed my blood pressure pill this morning, what should I do"],
    "old_rash": ["{w} has had a dry itchy patch on {his} leg for a few weeks, otherwise well",
                 "skin rash on my arms that comes and goes for months, no other symptoms",
                 "itchy scalp for weeks, no fever"],
    "insect_bite": ["{w} has a gnat bite that is itchy and pink, no swelling of the lips or face",
                    "got bitten by something in the garden, small red lump, itchy",
                    "wasp sting on {his} arm, sore and a bit red, breathing normally"],
    "appointment": ["can I book a smear test",
                    "I'd like to arrange a medication review",
                    "want to see the nurse about my blood pressure next week"],
    "minor_ache": ["{w} has a bit of a headache after a long day, otherwise fine",
                   "sore legs after a long walk, nothing else",
                   "mild backache from sitting at the desk, no other symptoms"],
    "sunburn": ["{w} has sunburn on {his} nose and arms, no blisters, drinking plenty",
                "slightly sunburnt after the park, a bit sore",
                "red shoulders from the sun yesterday, no fever"],
    "vaccine": ["when is the flu jab available",
                "{w} needs {his} booster vaccine, when can we come in",
                "do I need any jabs before going to Kenya"],
}

MISSPELL = {
    "breathing": ["breathin", "breething", "breahting"], "breathe": ["breath", "breeth"],
    "unresponsive": ["unresponsve", "unrepsonsive", "unresponsiv"], "unconscious": ["unconcious", "unconsious"],
    "seizure": ["seizer", "siezure"], "bleeding": ["bleading", "bleedin"], "choking": ["chocking", "chokeing"],
    "stomach": ["stomache", "stomac"], "pain": ["pian", "pain"], "chest": ["chesst", "chst"],
    "diabetic": ["diabetc", "diabetik"], "allergic": ["alergic", "allergic"], "swollen": ["swolen", "swollon"],
    "vomiting": ["vomitting", "vommiting"], "headache": ["hedache", "head ache"], "temperature": ["temprature", "temp"],
    "collapsed": ["colapsed", "collasped"], "pulse": ["puls"], "suddenly": ["sudenly"], "ankle": ["ankel"],
    "prescription": ["perscription", "prescripton"], "appointment": ["appointmant", "apointment"],
    "because": ["cos", "bc"], "please": ["pls", "plz"], "you": ["u"], "stroke": ["strok"],
    "pregnant": ["pregant", "pregnat"], "conscious": ["concious"], "tablets": ["tabs", "tablet's"],
    "overdosed": ["od'd", "overdossed"], "anaphylactic": ["anaphalactic", "anafylactic"], "asthma": ["asma", "asthama"],
}


def _fill(phrasing, subject):
    noun, he, his = subject
    him = "him" if he == "he" else "her"
    text = phrasing.replace("{w}", noun).replace("{he}", he).replace("{his}", his)
    text = text.replace("{him}", him).replace("{himself}", him + "self").replace("{them}", him)
    return text


def _noise(text, rng):
    def swap(match):
        word = match.group(0)
        options = MISSPELL.get(word.lower())
        if options and rng.random() < 0.35:
            return rng.choice(options)
        return word
    text = re.sub(r"[A-Za-z']+", swap, text)
    roll = rng.random()
    if roll < 0.25:
        text = text.lower()
    elif roll < 0.30:
        text = text.upper()
    if rng.random() < 0.25:
        text = re.sub(r"[,;!?]|\.(?!\d)", "", text)
    return re.sub(r"\s+", " ", text).strip()


def _build(scenario, phrasing, frames, subjects, rng):
    sid, level, bucket, _ = scenario
    subject = rng.choice(subjects)
    complaint = _fill(phrasing, subject)
    context = _fill(rng.choice(CONTEXT), subject)
    frame = rng.choice(frames)
    if "{x}" not in frame.lower() and rng.random() < 0.2:
        frame += " " + rng.choice(["{X}.", "also {x}"])
    text = frame.replace("{c}", complaint).replace("{C}", complaint[:1].upper() + complaint[1:])
    text = text.replace("{x}", context).replace("{X}", context[:1].upper() + context[1:])
    # Guidance for a long, multi-part request runs a bucket longer.
    extra = 1 if len(text) > 140 and bucket < 3 else 0
    return {"text": _noise(text, rng), "label": level, "length_bucket": bucket + extra,
            "answer_tokens": BUCKET_TOKENS[bucket + extra], "scenario": sid}


def generate(train_per_phrasing=4, held_per_phrasing=4, seed=SEED):
    rng, held_rng = random.Random(seed), random.Random(seed + 1)
    train_subjects = [s for s in MALE + FEMALE if s[0] not in HELD_SUBJECTS]
    held_subjects = [s for s in MALE + FEMALE if s[0] in HELD_SUBJECTS]
    train, held = [], []
    for scenario in SCENARIOS:
        phrasings = scenario[3]
        for phrasing in phrasings[:-1] + EXTRA_TRAIN.get(scenario[0], []):
            for _ in range(train_per_phrasing):
                train.append(_build(scenario, phrasing, TRAIN_FRAMES, train_subjects, rng))
        for _ in range(held_per_phrasing):
            held.append(_build(scenario, phrasings[-1], HELD_FRAMES, held_subjects, held_rng))
    return _dedupe(train), _dedupe(held)


def _dedupe(rows):
    seen, out = set(), []
    for row in rows:
        key = row["text"].lower()
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def write(directory=HERE):
    train, held = generate()
    for name, rows in (("train.jsonl", train), ("heldout.jsonl", held)):
        with open(Path(directory) / name, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return train, held


if __name__ == "__main__":
    train_rows, held_rows = write()
    from collections import Counter
    print("train", len(train_rows), sorted(Counter(r["label"] for r in train_rows).items()))
    print("heldout", len(held_rows), sorted(Counter(r["label"] for r in held_rows).items()))
