"""Red-flag rules: misspellings, negations, hypotheticals, and the only-raise guarantee."""
import pytest

from triage_site.classification import rules


@pytest.mark.parametrize(("text", "level"), [
    ("My father collapsed and is not breathing", 0),
    ("my husband isnt breathin and his lips are blue", 0),
    ("she is UNRESPONSVE on the floor", 0),
    ("he is unconcious and wont wake up", 0),
    ("baby chocking on a grape cant breath", 0),
    ("he cut his leg, bleading heavily and it won't stop", 0),
    ("stung by a wasp, throat is closing, used her epipen", 0),
    ("no pulse, we started CPR", 0),
    ("her face is drooping and her speech is slurred", 1),
    ("crushing chest pain down his left arm, he is diabetic", 1),
    ("chesst pian and he had a heart attack last year", 1),
    ("he says he wants to kill himself tonight", 1),
    ("I'm feeling sucidal", 1),
    ("my 5 week old baby has a temperature of 38.4", 1),
    ("worst headache of my life, came on suddenly", 1),
    ("fell and hit her head, she is on warfarin", 1),
    ("my brother od'd on his methadone, he's still talking", 1),
    ("purple spots on his legs that don't fade under a glass, temp 39.5", 1),
    ("i dont know why hes unconscious, hes on the floor", 0),  # not knowing is no negation
    ("I'm not sure, she's unresponsive on the sofa", 0),
])
def test_red_flags_fire_including_misspellings(text, level):
    found = rules.red_flags(text)
    assert found.level == level, found.fired
    assert found.reason


@pytest.mark.parametrize("text", [
    "he fell over, not unresponsive, talking now, graze on his knee",
    "no chest pain, no breathing problems, just a sore shoulder",
    "denies chest pain, small cut on thumb",
    "was unconscious for a second but came round straight away, fine now",
    "breathing fine, not choking, coughing after a drink went down the wrong way",
    "no suicidal thoughts, feeling a bit low",
    "insect bite on the arm, no breathing problems",
    "I need a repeat prescription for my inhaler",
    "walks with a limp since his knee operation",
    "twisted my ankle, it's at an odd angle, I can put weight on it",  # "odd" is not a misspelt "od'd"
    "I cut my arm to cope, it's stopped bleeding, I don't want to die",
    "I don't have chest pain, he's diabetic and a smoker, it's my knee",
    "he is not unresponsive, he is talking to me",
])
def test_negated_or_absent_findings_do_not_fire(text):
    assert rules.red_flags(text).level is None, rules.red_flags(text).fired


@pytest.mark.parametrize("text", [
    "I keep thinking about throwing myself under a bus on the high street",
    "she says shes going to step in front of a train tonight",
    "he keeps threatening to jump in front of the traffic on the bypass",
    "he wants to shoot himself, his dads rifle is in the house",
    "he threw himself off the multi-storey car park",
])
def test_suicidal_intent_said_as_a_method_fires_without_the_word(text):
    found = rules.red_flags(text)
    assert (found.level, found.fired) == (1, ["suicidal"])


@pytest.mark.parametrize("text", [
    "she took 20 of her tablets because she wanted to die",
    "I drank bleach because I don't want to live any more",  # "don't" is folded to "do not"
    "took 24 paracetamol after a row, feel fine, I don't want to die anymore",  # owns to an earlier intent
])
def test_intent_said_beside_an_overdose_fires_the_suicidal_rule_too(text):
    assert {"overdose", "suicidal"} <= set(rules.red_flags(text).fired)


@pytest.mark.parametrize("text", [
    "She walked out in front of a car, it clipped her leg, she is talking to me",
    "the dog ran out in front of a car, can I bring him in",
    "my son cut himself chopping onions",
    "feeling low, sometimes think everyone would be better off without me, no plan",
])
def test_an_accident_or_thoughts_without_a_plan_are_not_read_as_suicidal_intent(text):
    assert "suicidal" not in rules.red_flags(text).fired


@pytest.mark.parametrize(("text", "rule"), [
    ("I vomited a mugful of fresh red blood, I'm dizzy when I stand", "gi_bleed"),
    ("black tarry poos for two days and he's just fainted on the loo", "gi_bleed"),
    ("passing black, tarry motions since yesterday, very dizzy when I stand", "gi_bleed"),
    ("bitten by an adder on the ankle, the foot is swelling up fast", "snake_bite"),
    ("splashed oven cleaner in my eye, it's burning and blurry", "eye_chemical"),
    ("mixing mortar and got quicklime in his eyes, can't open them", "eye_chemical"),
    ("my eye is full of lime dust from the plastering and it stings like mad", "eye_chemical"),
    ("stood on a snake on the heath and it bit him on the ankle, the foot is swelling fast", "snake_bite"),
    ("snakebite on her hand, it's swollen and she feels sick", "snake_bite"),
    ("an adder got him on the calf, it's swelling up", "snake_bite"),
    ("my 2 year old swallowed one of those flat round batteries from the kitchen scales", "button_battery"),
    ("she's pushed a button battery up her nose", "button_battery"),
    ("knee dislocation in a tackle, foot pale and cool, absent DP pulse", "limb_ischaemia"),
    ("twisted my knee, it looks totally wrong and my foot has gone cold and pale", "limb_ischaemia"),
    ("bad back flared up, now I can't feel the toilet paper when I wipe", "cauda_equina"),
    ("known disc prolapse, new saddle numbness since this morning", "cauda_equina"),
    ("positive test last week, now bad pain on one side and bleeding a bit", "pregnancy"),
    ("she's on chemo, last dose a week ago, temperature 38.3", "chemo_fever"),
    ("about 6 weeks gone, sharp pain low on the right and now my shoulder tip hurts", "pregnancy"),
    ("period is two weeks late, one-sided pain and I blacked out on the stairs", "pregnancy"),
    ("she's 34/40 and has just had a fit on the sofa", "pregnancy"),
    ("I'm 36 weeks, the baby has not moved at all since yesterday", "pregnancy"),
    ("my 9 month old has been sick three times, it's dark green", "bilious_vomiting"),
    ("our toddler hasn't had a wet nappy since last night and is really floppy", "dry_and_drowsy"),
    ("the barbecue flared up in his face, his eyebrows are singed off and his voice is going hoarse",
     "airway_burn"),
    ("we got out of the house fire, she's coughing up black stuff", "airway_burn"),
    ("all of a sudden I can't see out of my right eye, like a curtain came down", "sudden_vision"),
    ("was hammering a chisel and a bit of metal flew into my eye, now it's blurry", "eye_penetrating"),
    ("after the firework hit his eye the pupil is an odd shape", "eye_penetrating"),
    ("my 3 year old drank some drain cleaner from under the sink", "overdose"),
    ("he's 2, chewed a refill of my e-cig liquid and has been sick", "overdose"),
    ("we ate wild mushrooms from the woods last night, now both vomiting", "overdose"),
    ("she's on enoxaparin injections and fell and hit her head", "head_anticoag"),
    ("I've been saving up my tablets in a shoebox for when I decide to go", "suicidal"),
    ("baby is only two months and feels hot, 38.2", "infant_fever"),
    ("had the baby 5 days ago and I'm soaking through a pad every hour", "heavy_vaginal_bleeding"),
    ("type 1, sugar 29 and he's getting drowsy and breathing deep", "ketoacidosis"),
    ("fell off his bike, banged his head, and he's been sick three times", "head_injury_signs"),
    ("nan hit her head on the door, now she keeps asking the same thing", "head_injury_signs"),
    ("grandad didn't recognise me this morning and he's got a temperature", "confusion"),
    ("a squeezing feeling in the middle of my chest for half an hour, I'm 61", "chest_pain_risk"),
    ("denies chest pain, but a 'pressure' behind the breastbone for 30 minutes, sweating, 66M", "chest_pain_risk"),
    ("his face has dropped on the left and he can't lift his cup", "stroke"),
    ("the care home gave her methotrexate every day this week instead of weekly", "overdose"),
    # poisonings and suicidal means said plainly, an open fracture, a weapon at the scene
    ("i took like 30 of my mums paracetamol about 2 hours ago", "overdose"),
    ("she swallowed 15 of her sertraline tablets an hour ago", "overdose"),
    ("I've got all my tablets lined up on the table", "suicidal"),
    ("I've taped a hosepipe to the exhaust", "suicidal"),
    ("I've written letters to my kids and I know where I'm going to do it", "suicidal"),
    ("co alarm going off, whole family dizzy, my son being sick", "carbon_monoxide"),
    ("the carbon monoxide alarm is beeping and my mum is sleepy and muddled", "carbon_monoxide"),
    ("his shin bone is sticking out through the skin, he's awake", "open_fracture"),
    ("a man is waving a machete at people outside the station", "weapon"),
    ("he's got a knife and he's banging on the bathroom door", "weapon"),
    ("ate prawns 15 mins ago, lips tingling n swelling, throat feels tight, hives on my neck", "allergic_throat"),
    ("stung by a wasp, now my throat is getting tight and I'm itchy", "allergic_throat"),
    ("man, 70, on rivaroxaban, tripped and hit his forehead on the pavement, alert", "head_anticoag"),
    ("I've got my dad's shotgun on the table in front of me", "weapon"),
    ("the neighbour is pointing a rifle out of his window at us", "weapon"),
])
def test_high_risk_situations_fire_level_1(text, rule):
    found = rules.red_flags(text)
    assert (found.level, rule in found.fired) == (1, True), found.fired


@pytest.mark.parametrize("text", [
    "been vomiting all night but no blood, a bit dizzy",  # the blood is denied
    "black tarry poo since I started iron tablets, I feel fine",  # no sign of blood loss
    "an adder bit my dog's leg, I'm fine, no swelling on me",
    "bleach splashed in my eye, rinsed it, a bit red",  # household bleach is left to the model
    "squirted lime juice in my eye cutting a lime, it stings",  # the fruit, not the alkali
    "we live at 40 Lime Street, my son has a red sticky eye",  # a street name
    "we saw a snake on the path and she's a bit shaken, her ankle is swollen from a sprain",  # no bite
    "how do I get rid of old button batteries safely?",  # nothing swallowed
    "my fingers go white and cold in the winter, no injury",  # no injury
    "sciatica down my left leg, no numbness between my legs",  # denied
    "finished chemo eight months ago, now a cough and a temperature of 38.4",
    "I'm 50 and was sick twice, a bit green, probably the curry",  # bile in an adult is left to the model
    "she's had diarrhoea, no wee since this morning, but she's lively and playing",  # not drowsy
    "my voice is hoarse from shouting at the match",  # no fire
    "I lost the sight in my left eye for a minute this morning, then it came back",  # cleared: for the model
    "I've had a cough for six weeks and a temperature on and off",  # not a baby's age
    "I'm 30 weeks, no bleeding, no pain, baby moving, just heartburn",
    "we picked blackberries in the woods, what's the best jam recipe?",
    "3 wk old has a bit of nappy rash, otherwise feeding fine, temp 37.0",  # a normal temperature
    "I'm 7 weeks pregnant and feel boiling hot on this train",  # the age of a pregnancy, not a baby's
    "type 2, my sugar has been 24 all week, I'm alert and drinking lots",  # high but awake
    "bumped my head on a cupboard, no sickness, remember everything",
    "I'm 62 and had a tight pain in my chest on Sunday walking uphill, it went when I rested",  # passed
])
def test_the_high_risk_rules_need_their_second_finding(text):
    fired = set(rules.red_flags(text).fired)
    assert not fired & {"gi_bleed", "snake_bite", "eye_chemical", "chemo_fever", "button_battery", "limb_ischaemia",
                        "cauda_equina", "bilious_vomiting", "dry_and_drowsy", "airway_burn", "sudden_vision",
                        "eye_penetrating", "infant_fever", "pregnancy", "overdose", "heavy_vaginal_bleeding",
                        "ketoacidosis", "head_injury_signs", "chest_pain_risk"}, fired


def test_chest_pain_needs_a_risk_factor():
    assert rules.red_flags("sharp chest pain when breathing in after a cold").level is None
    assert rules.red_flags("chest pain, he smokes and is sweating").level == 1


@pytest.mark.parametrize("text", [
    "Nothing's happened, he's fine. What would I do if he ever stopped breathing? How many compressions?",
    "Just a question, no emergency. If my baby ever choked, what's the right thing to do?",
    "just in case, what are the signs of a stroke? my dad is fine",
    "I want to learn how to do CPR on a baby",
    # said of months or years ago
    "She tried to overdose two years ago but she's been well since",
    "My best friend died of an overdose and the anniversary is next week",
    "history of stroke, doing well, just wants his prescription",
    "he had a cardiac arrest in 2019 and wants advice about exercise",
    # cleared, a normal dose, or not what the word says (left to the model)
    "my son choked on a grape, I did back blows and it flew out, he's crying loudly now",
    "choked on a crisp 10 min ago, coughed it up, breathing normal now, throat feels scratched",
    "took 2 paracetamol for a cold, is that safe in pregnancy?",
    "he's not wheezy, not breathing fast, no fever, just a bunged-up nose",
    "I can't breathe through my nose at all with this cold, mouth breathing is fine",
    "touched the hair straighteners, cooled under water for 20 minutes, small blisters",
    "I watched a programme about drowning, how do rescue breaths work?",
    "had a hypo 2.9, had lucozade and biscuits, now 6.8, feel fine",
    "T1DM, hypo BM 3.0 treated with glucose, now BM 7.1, GCS 15",
    "my 6 year old swallowed a lot of water at his swimming lesson",
    "my toddler ate two holly berries, he's fine, are they poisonous?",
])
def test_a_first_aid_question_or_a_finding_that_is_past_cleared_or_harmless_does_not_fire(text):
    assert rules.red_flags(text).level is None, rules.red_flags(text).fired


@pytest.mark.parametrize("text", [
    "if i dont get help hes going to die hes not breathing",
    "What would I do? He's not breathing!",
    "What if it's a heart attack. He is not breathing now",
])
def test_a_bare_if_or_a_hypothetical_in_another_sentence_does_not_hide_a_red_flag(text):
    assert rules.red_flags(text).level == 0


@pytest.mark.parametrize(("text", "level"), [
    ("I'm 26 weeks pregnant and tripped over the dog. No bleeding, no pain, baby's kicking.", None),
    ("20 weeks pregnant, had a fall, no bleeding and no tummy pain", None),
    ("I'm 8 weeks pregnant with bad pain low on one side", 1),
    ("pregnant, no pain but bleeding quite a lot", 1),
    ("26 weeks pregnant, no pain, some spotting and bleeding", 1),
    ("the cord is hanging out and she is 35 weeks", 0),
])
def test_a_follow_on_finding_must_itself_be_present(text, level):
    assert rules.red_flags(text).level == level, rules.red_flags(text).fired


@pytest.mark.parametrize(("text", "level"), [
    ("31M cocaine binge, GTCS ongoing >8 min, hyperthermic to touch", 0),
    ("he's had three in a row and he hasn't woken up in between any of them", 0),
    ("son epileptic had 3 fits in 20 mins not woke up between, gave midaz", 0),
    ("she's been having a fit since before I picked up the phone, at least five minutes", 0),
    ("now having a fit on the floor, still jerking", 0),
    ("my 18-month-old had a fit about five minutes ago, he's crying now", None),
    ("ongoing fits issue, seeing neuro next week, need a repeat prescription", None),
    ("two short seizures today, she came round between them and is chatting", None),
    # going on five minutes or more, or going on as the caller speaks
    ("she's having a fit, jerking all over. It's been about six minutes", 0),
    ("she started fitting about twelve minutes ago and it still hasn't stopped", 0),
    ("she is fitting on the kitchen floor", 0),
    ("Caller: she had a seizure. Dispatcher: Is she still fitting? Caller: No, it stopped after half a minute.", None),
    ("he had a fit for about 2 minutes, it stopped on its own and now, 20 minutes later, he's awake", None),
    ("had a fit at his desk about 10 minutes ago, now sitting up and chatting", None),
    ("he came round after ten minutes of fitting once before, today he's fine", None),
])
def test_a_seizure_that_will_not_stop_or_repeats_without_waking(text, level):
    assert rules.red_flags(text).level == level, rules.red_flags(text).fired


@pytest.mark.parametrize(("text", "rule"), [
    ("she not breathe, colour is blue", "not_breathing"),
    ("RTC, driver unresponsive, apnoeic", "not_breathing"),
    ("he won't wake up and his chest isn't moving", "not_breathing"),
    ("I can't see her chest moving at all", "not_breathing"),
    ("very hot, floppy, and I don't think she's breathing", "not_breathing"),
    ("he's gone quiet and I can't see him breathing", "not_breathing"),
    ("found unrousable in his chair", "unresponsive"),
    ("no response to pain or voice", "unresponsive"),
    ("his eyes are open but he's not answering me", "unresponsive"),
    ("pale, BP 72/48, responds to pain only", "unresponsive"),
    ("she fainted a few minutes ago and she's still not coming round", "unresponsive"),
    ("he's been shaking for ten minutes and he hasn't come round at all", "unresponsive"),
    ("he won't open his eyes or answer me", "unresponsive"),
    ("I've shouted and shaken her and she doesn't even flinch", "unresponsive"),
    ("he's not breathing, not even gasping", "not_breathing"),
    ("no pulse, only gasping", "not_breathing"),
    # a finding named by its negation is not denied by another negation before it
    ("she's not breathing and not responding", "unresponsive"),
    ("it's boiling, there's no fan, she won't wake up", "unresponsive"),
])
def test_a_breathing_or_waking_arrest_said_in_other_words_fires_level_0(text, rule):
    found = rules.red_flags(text)
    assert found.level == 0 and rule in found.fired, found.fired


@pytest.mark.parametrize("text", [
    "she went quiet and did not breathe for a few seconds, then gasped and carried on, she's fine now",
    "my baby is 3 months and I cannot tell if he is breathing right, he is feeding well and pink",
    "the asthma isn't helped by salbutamol, no response to the inhaler",
    "she's not answering her phone",
    "he was unconscious for a minute but has come round now and is talking",
    "the pain responds to pain relief well",
    # the arrest's own words, denied
    "he hasn't stopped breathing and he isn't gasping, he's talking to me",
    "breathing regular, no gasping, no agonal breaths, alert",
    "she won't open her eyes because of the light, she says her eyes sting",
])
def test_a_past_pause_a_question_of_quality_or_an_unanswered_phone_is_not_an_arrest(text):
    assert rules.red_flags(text).level != 0, rules.red_flags(text).fired


@pytest.mark.parametrize("text", [
    "co alarm keeps chirping once a minute, back says low battery. nobody has a headache or feels sick",
    "our carbon monoxide alarm went off, we've gone outside, everyone is fine",
    "took 2 paracetamol for a headache",
    "I've got a knife cut on my thumb from chopping onions, it's stopped bleeding",
    "a small cut on my finger, I can see a bit of white fat but no bone",
])
def test_a_flat_battery_a_normal_dose_or_a_small_cut_do_not_fire(text):
    assert rules.red_flags(text).level is None, rules.red_flags(text).fired


def test_negation_does_not_cross_a_clause():
    assert rules.red_flags("no fever, but he is unresponsive").level == 0


def test_most_urgent_finding_wins_and_all_reasons_are_kept():
    found = rules.red_flags("chest pain with diabetes and now he is not breathing")
    assert found.level == 0
    assert {"not_breathing", "chest_pain_risk"} <= set(found.fired)


@pytest.mark.parametrize("model_level", [None, 0, 1, 2, 3, 4])
@pytest.mark.parametrize("rule_level", [None, 0, 1])
def test_rules_only_raise_urgency(model_level, rule_level):
    final = rules.apply_rules(model_level, rule_level)
    if model_level is not None:
        assert final <= model_level
    if rule_level is not None:
        assert final <= rule_level


def _rules_file(tmp_path, rule):
    """The shipped rules file with `rule` (TOML) appended."""
    path = tmp_path / "red_flags.toml"
    path.write_text(rules.RULES_PATH.read_text(encoding="utf-8") + "\n[[rule]]\n" + rule, encoding="utf-8")
    return path


def test_the_shipped_rules_file_loads():
    words, phrases, came_round, hypothetical, past_after, past_before, loaded = rules.load_rules()
    assert words and phrases and came_round.search("she came round") and hypothetical.search("what if he")
    assert past_after.match(" two years ago") and past_before.search("history of ")
    assert {rule.level for rule in loaded} == {0, 1} and len({rule.name for rule in loaded}) == len(loaded)


@pytest.mark.parametrize("rule, complaint", [
    ('name = "broken"\nlevel = 0\nreason = "x"\npattern = \'(unclosed\'\n', "bad regular expression"),
    ('name = "too_mild"\nlevel = 3\nreason = "x"\npattern = \'sore\'\n', "a level in (0, 1)"),
    ('name = "typo"\nlevel = 1\nreason = "x"\npattern = \'sore\'\nnegateable = false\n', "unknown keys"),
    ('name = "far"\nlevel = 1\nreason = "x"\npattern = \'sore\'\nthen = \'leg\'\nwithin = 0\n', "within must be"),
    ('name = "bad_then"\nlevel = 1\nreason = "x"\npattern = \'sore\'\nthen = \'(leg\'\n', "bad regular expression"),    ('name = "both"\nlevel = 1\nreason = "x"\npattern = \'sore\'\nthen = \'leg\'\nnear = \'arm\'\n', "not both"),
    ('name = "bad_clear"\nlevel = 1\nreason = "x"\npattern = \'sore\'\ncleared_by = \'(gone\'\n', "cleared_by"),
    ('name = "shared"\nlevel = 0\nreason = "x"\npattern_of = "no_such_rule"\n', "pattern_of must name"),
    ('name = "shared_and_own"\nlevel = 0\nreason = "x"\npattern_of = "cannot_breathe"\npattern = \'x\'\n',
     "pattern_of must name"),
])
def test_a_bad_rule_fails_loading_with_its_name_and_the_reason(tmp_path, rule, complaint):
    with pytest.raises(rules.RulesFileError) as error:
        rules.load_rules(_rules_file(tmp_path, rule))
    name = rule.split('"')[1]
    assert repr(name) in str(error.value) and complaint in str(error.value)


def test_a_rule_can_share_an_earlier_rules_pattern_and_keep_its_own_conditions():
    by_name = {rule.name: rule for rule in rules.RULES}
    shared, own = by_name["collapsed_cannot_breathe"], by_name["cannot_breathe"]
    assert shared.pattern.pattern == own.pattern.pattern and shared.requires and not own.requires
    assert rules.red_flags("he can't breathe").fired == ["cannot_breathe"]
    assert set(rules.red_flags("he collapsed and can't breathe").fired) >= {"cannot_breathe", "collapsed_cannot_breathe"}


@pytest.mark.parametrize("text, quoted", [
    ("oven cleaner splashed in his eye", "oven cleaner splashed in his eye"),
    ("his eye is full of cement", "eye is full of cement"),
])
def test_a_near_finding_counts_on_either_side_and_is_quoted(text, quoted):
    result = rules.red_flags(text)
    assert "eye_chemical" in result.fired and quoted in result.reason


@pytest.mark.parametrize("text", [
    "got drain cleaner on my hands at work this morning, the skin on both of them is red and sore, and my eye",
    "cement dust everywhere, no eye symptoms at all",
])
def test_a_near_finding_too_far_away_or_negated_does_not_count(text):
    assert "eye_chemical" not in rules.red_flags(text).fired


@pytest.mark.parametrize("text, rule", [
    ("He had a stroke last year and now his face has dropped and his speech is slurred", "stroke"),
    ("history of stroke, now slurred speech and a facial droop", "stroke"),
    ("she took an overdose an hour ago", "overdose"),
])
def test_a_new_finding_beside_an_old_one_still_fires(text, rule):
    assert rule in rules.red_flags(text).fired



@pytest.mark.parametrize("text", [
    "he's choking, I've done back blows and nothing came up, he's going blue",
    "my 3 year old is choking on a sweet, coughing hard, it hasn't come out",
    "Dispatcher: Is he breathing ok? Caller: he's choking, a whistling noise, can't cough",
    "she is not breathing properly, just odd gasps",
    "he was under water for about a minute before we got him out",
    "he's having a hypo, sugar 1.9, now 2.1 after juice and still confused",
])
def test_a_choke_a_breath_or_a_hypo_that_has_not_cleared_still_fires(text):
    assert rules.red_flags(text).level is not None


@pytest.mark.parametrize("text", [
    "my husband has a shotgun licence for clay shooting, he's cut his thumb on a tin",
    "the police took the rifle away an hour ago, now my brother is crying and won't eat",
])
def test_a_firearm_that_is_not_in_play_is_no_weapon_at_the_scene(text):
    assert "weapon" not in rules.red_flags(text).fired


def test_a_tight_throat_without_an_allergic_reaction_is_left_to_the_model():
    fired = rules.red_flags("I'm having a panic attack, my throat feels tight and my hands are tingling").fired
    assert "allergic_throat" not in fired
