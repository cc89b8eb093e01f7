"""Caption checks and the noun phrases of a caption (the open-vocabulary detector's classes).

"Draw an Audio" feeds simple n-grams of the caption to the detector; here a small rule-based
chunker does the same without any model download: it drops function words (determiners,
pronouns, prepositions, conjunctions, auxiliaries, adverbs, numbers) and verbs (a built-in list of
common sound verbs in all their forms, plus -ing and -ed heuristics), and keeps the maximal runs
of the remaining adjective/noun words. Words that are both nouns and verbs ("knock", "crash",
"drops") are decided by their neighbours: after a determiner or adjective they are nouns
("a loud crash"), after a noun they are verbs ("a door slams"), except a base form after a
singular noun, which is a compound ("a door slam").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from foley_core.errors import CaptionError

__all__ = ["validate_caption", "noun_phrases"]

MAX_CAPTION_CHARS = 300


def validate_caption(text: str, *, max_chars: int = MAX_CAPTION_CHARS) -> str:
    """Return the caption stripped, with runs of whitespace (and control characters) as one space.

    Raises CaptionError when it is not text, is empty, or is longer than `max_chars` characters.
    """
    if text is None:
        raise CaptionError("The caption is empty: describe the sound, e.g. 'a dog barks'.")
    if not isinstance(text, str):
        raise CaptionError(f"The caption must be text, got {type(text).__name__}.")
    cleaned = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in text)
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise CaptionError("The caption is empty: describe the sound, e.g. 'a dog barks'.")
    if len(cleaned) > max_chars:
        raise CaptionError(
            f"The caption is {len(cleaned)} characters long; the limit is {max_chars}. "
            "Shorten it to the sound itself, e.g. 'footsteps on gravel'."
        )
    return cleaned


# ----------------------------------------------------------------------------------------------
# Lexicon

def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_DETERMINERS = _words("""
    a an the this that these those some any each every no another either neither
    my your his her its our their whose
    several many few multiple various numerous both all most much more less
    one two three four five six seven eight nine ten eleven twelve twenty hundred dozen
    first second third single couple pair lots lot
""")
_SINGULAR_DETERMINERS = _words("a an one this that each every another single")
_PRONOUNS = _words("""
    i you he she it we they me him us them myself yourself himself herself itself ourselves
    themselves someone somebody something anyone anybody anything everyone everybody
    everything nobody nothing one's who which what whom
""")
_PREPOSITIONS = _words("""
    at on in into onto of off with without within from to by for over under underneath
    through throughout across against along alongside around about above below behind beside
    besides between beyond near nearby inside outside upon toward towards past via among amid
    during after before until till like unlike per across
""")
_CONJUNCTIONS = _words("""
    and or but nor as while whilst then than so yet if when whenever until because
    """)
_AUXILIARIES = _words("""
    is are was were be been being am has have had having do does did will would can could may
    might shall should must get gets got getting
""")
# Adverbs and particles that follow sound verbs ("a door slams shut", "a bird flies away").
_ADVERBS = _words("""
    away out off down up back again around about apart together over along forward forwards
    backward backwards aside very quite rather too so also still
    just only even almost nearly slightly really not n't then there here now once twice
    repeatedly constantly continuously rhythmically intermittently periodically occasionally
    loudly softly quietly gently slowly quickly rapidly fast hard heavily lightly sharply
    briefly suddenly steadily gradually violently firmly faintly distantly closely nearby far
    rhythmically fiercely wildly madly frantically calmly lazily noisily abruptly smoothly
    roughly sporadically somewhere everywhere elsewhere inward outward upward downward
    overhead outdoors indoors upstairs downstairs
    """)
_ADVERB_SUFFIXES = ("ally", "ously", "edly", "fully", "ively", "ently", "antly", "ily", "ingly")
_NOT_ADVERBS = _words("""
    ally family lily belly jelly rally bully gully holly folly dolly trolley butterfly dragonfly
    firefly housefly assembly reply supply anomaly melancholy doily
""")
# Words that complete a verb ("slams shut") but are adjectives or verbs elsewhere ("an open door").
_PARTICLES = _words("open shut closed loose free apart")
# Words that carry no visual object for the detector when used as "the sound of X".
_GENERIC_SOUND_NOUNS = _words("sound sounds noise noises audio recording recordings")
_PLACE_FILLERS = _words("distance background foreground")

_ADJECTIVES = _words("""
    loud soft quiet silent heavy small big large little huge tiny giant massive old new
    young wet dry hard metallic wooden
    distant deep high low short long brief quick fast slow sharp dull muffled crisp faint
    gentle rough smooth hollow thick thin busy electric electronic mechanical rusty creaky
    squeaky tropical steady constant rhythmic repeated single multiple distorted reverberant
    bright dark red blue green yellow white black grey gray brown orange pink purple golden
    wild angry calm strong weak empty full loose tight cold hot
    warm icy frozen windy rainy stormy sunny noisy crowded remote far near nearby outdoor
    indoor underwater wild domestic mechanical digital analog synthetic natural artificial
    sudden powerful violent subtle harsh shrill thunderous low-pitched
    high-pitched medium fat slim wide narrow sparse dense muddy sandy rocky grassy leafy dusty
    gravelly crunchy slippery sticky squishy fizzy bubbly watery fiery smoky airy stony
    dead sleepy tired hungry
""")

# Sound verbs (base forms) whose inflections mark a verb in a caption. Words that are mostly
# nouns in captions (nail, bell, shot) are left out on purpose.
_VERB_BASES = _words("""
    bark howl growl whine whimper yelp purr meow hiss roar moo neigh bleat oink quack cluck
    crow chirp tweet sing call hoot caw squawk screech squeal squeak buzz hum drone whir whirr
    whirl whiz whizz whoosh swoosh swish swoop zip zap zoom flutter flap flit fly glide soar
    slam bang knock tap hit strike beat pound thump thud thunk clunk clank clang clatter clink
    clank jingle jangle chime ring toll ding ping ting tick tock click clack clap crack snap
    pop burst break shatter smash crash crunch crumble crumple crinkle crackle rustle scrape
    scratch grind rub brush sweep scrub wipe slide skid roll bounce drop fall tumble topple
    collapse splash splatter splat spill pour drip trickle gurgle bubble boil sizzle fizz fizzle
    hiss spray squirt flow flush gush rush run stream lap slosh swirl wash rain
    blow whistle gust rumble thunder explode blast boom detonate fire shoot ricochet whip lash
    swing swipe slash slice chop cut saw drill hammer bash smack slap punch kick stomp stamp
    step walk march jog sprint trot gallop creep tiptoe shuffle stumble trip jump leap hop land
    climb crawl dive swim paddle row sail drive ride pass speed accelerate brake rev idle start
    stop stall honk beep toot hoot screech skid pull push drag haul lift carry throw toss
    catch open close shut lock unlock latch slam creak groan moan grunt sigh gasp breathe pant
    cough sneeze sniff snore snort laugh giggle chuckle cry sob weep scream shout yell call
    cheer clap whisper talk speak chat mumble murmur sing hum chant shout applaud
    chew munch crunch eat drink gulp slurp sip swallow burp spit bite lick kiss
    type write tear rip fold flip shake rattle tremble vibrate wobble shiver quiver
    spin twist turn rotate grind crank wind wring squeeze squish squelch squash crush press
    stir mix whisk fry cook bake sear
    play strum pluck bow drum twang plink plonk tinkle toot blare blast wail
    glow burn flicker flare smoulder smolder ignite spark sparkle fizz erupt
    start stop turn switch plug charge load unload reload cock aim
    echo resonate reverberate fade die groan creak wheeze whinny bray bellow snarl
    chip chisel carve sand file plane sharpen hack split dig shovel rake mow
    leak seep soak splash sink float bob ripple surge crash break lap
    thrust stab parry clash block deflect loose release draw fling hurl sling
    harvest gather sort cut knead
    move shift settle drift scatter sway bend snap wave flap billow
    approach arrive leave depart enter exit go come pass circle hover
    die fall sputter splinter launch set clink plop patter chug pulse spool backfire snuff
    unlatch babble bustle""")
_VERB_IRREGULAR = _words("""
    broke fell rang struck shook blew flew ran drove rode sang threw tore began spun swung
    stuck slid fought caught sat stood went came took made spat wept crept swept leapt sank
    stung dug hung woke froze burnt leant knelt thrown blown flown torn ridden driven drawn
    """)
# -ing / -ed words that are nouns, not verb forms.
_ING_NOUNS = _words("""
    ceiling building string spring swing sling sting thing king ring wing morning evening
    pudding wedding clothing railing sibling awning bedding icing lightning duckling stuffing
    offspring earring darling sterling shilling herring viking casing housing tubing piping
    bearing lining something nothing anything everything during bring cling fling
    """)
_ED_NOUNS = _words("bed shed sled seed reed weed speed steed breed creed need hundred sacred")
_IRREGULAR_PLURALS = _words("people men women children feet teeth geese mice cattle police")
_SINGULARS_IN_S = _words("gas canvas lens news series species atlas chaos iris walrus")
_PLURAL_DETERMINERS = _words("""
    two three four five six seven eight nine ten eleven twelve twenty hundred dozen several
    many few multiple various numerous these those both
    """)
# "a flock of birds", "a gust of wind": the object is what follows "of".
_QUANTITY_NOUNS = _words("""
    set pair group bunch flock herd pack swarm couple series lot lots handful number pile
    stack row chorus gust burst puff
    """)
# Word pairs that are one noun although a word looks like a verb form ("wind chimes",
# "landing gear", "level crossing").
_COMPOUNDS = frozenset({
    ("wind", "chimes"), ("wind", "chime"), ("rain", "drops"), ("water", "drops"),
    ("foot", "steps"), ("hoof", "beats"), ("level", "crossing"), ("shell", "casing"),
    ("landing", "gear"), ("racing", "engine"), ("racing", "car"), ("swimming", "pool"),
    ("washing", "machine"), ("sewing", "machine"), ("frying", "pan"), ("diving", "board"),
    ("fishing", "rod"), ("sleeping", "bag"), ("dining", "room"), ("living", "room"),
    ("waiting", "room"), ("shopping", "cart"), ("parking", "lot"), ("boxing", "ring"),
    ("battering", "ram"), ("baking", "tray"), ("chopping", "board"), ("cutting", "board"),
    ("rocking", "chair"), ("spinning", "wheel"), ("steering", "wheel"), ("walking", "stick"),
    ("sliding", "door"), ("revolving", "door"), ("ceiling", "fan"), ("running", "water"),
})


def _inflections(base: str) -> tuple[set[str], set[str], set[str]]:
    """(-s, -ing, -ed) forms of a base verb; both doubled and plain consonants are generated."""
    s_forms, ing_forms, ed_forms = set(), set(), set()
    if base.endswith(("s", "sh", "ch", "x", "z", "o")):
        s_forms.add(base + "es")
    elif base.endswith("y") and base[-2:-1] not in "aeiou":
        s_forms.add(base[:-1] + "ies")
    else:
        s_forms.add(base + "s")
    if base.endswith("ie"):
        ing_forms.add(base[:-2] + "ying")
    elif base.endswith("e") and not base.endswith(("ee", "ye", "oe")):
        ing_forms.add(base[:-1] + "ing")
    else:
        ing_forms.add(base + "ing")
    if base.endswith("e"):
        ed_forms.add(base + "d")
    elif base.endswith("y") and base[-2:-1] not in "aeiou":
        ed_forms.add(base[:-1] + "ied")
    else:
        ed_forms.add(base + "ed")
    if re.search(r"[^aeiou][aeiou][bdgklmnprtz]$", base):
        ing_forms.add(base + base[-1] + "ing")
        ed_forms.add(base + base[-1] + "ed")
    return s_forms, ing_forms, ed_forms


def _build_verb_forms() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    s_all, ing_all, ed_all = set(), set(), set()
    for base in _VERB_BASES:
        s_forms, ing_forms, ed_forms = _inflections(base)
        s_all |= s_forms
        ing_all |= ing_forms
        ed_all |= ed_forms
    return frozenset(s_all), frozenset(ing_all), frozenset(ed_all | _VERB_IRREGULAR)


_VERB_S, _VERB_ING, _VERB_ED = _build_verb_forms()


# ----------------------------------------------------------------------------------------------
# Chunker

_TOKEN = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*|[^\w\s]|_")
_QUOTED = re.compile(r'"[^"]*"|\u201c[^\u201d]*\u201d')

# Token kinds; nouns and adjectives are kept, every other kind ends a phrase.
_START, _DET, _ADJ, _NOUN, _PRON, _AUX, _FUNC, _VERB, _CONJ_AFTER_VERB = range(9)


def _tokens(caption: str) -> list[str]:
    text = unicodedata.normalize("NFKC", caption).strip()
    if _QUOTED.fullmatch(text):
        text = text[1:-1]              # a whole caption pasted in quotes
    text = _QUOTED.sub(",", text)      # quoted words are onomatopoeia ('a crowd goes "oooh"')
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    out: list[str] = []
    for tok in _TOKEN.findall(text):
        if tok.endswith("'s") and len(tok) > 2:
            out += [tok[:-2], "'s"]
        elif tok.endswith("s'") and len(tok) > 2:
            out += [tok[:-1], "'s"]
        elif tok.endswith("n't"):
            out += [tok[:-3], "n't"]
        else:
            out.append(tok)
    return out


def _looks_plural(word: str) -> bool:
    if word in _IRREGULAR_PLURALS:
        return True
    if word in _SINGULARS_IN_S:
        return False
    return word.endswith("s") and not word.endswith(("ss", "us", "is", "ics"))


def _is_adverb(word: str) -> bool:
    if word in _ADVERBS:
        return True
    return word.endswith(_ADVERB_SUFFIXES) and len(word) > 5 and word not in _NOT_ADVERBS


def _verb_form(word: str | None) -> str | None:
    """'s', 'ing', 'ed' or 'base' when `word` is a known (or, for -ing, likely) verb form."""
    if not word:
        return None
    if word in _VERB_S:
        return "s"
    if word in _VERB_ING or (word.endswith("ing") and len(word) >= 6 and word not in _ING_NOUNS):
        return "ing"
    if word in _VERB_ED:
        return "ed"
    if word in _VERB_BASES:
        return "base"
    return None


def _suffix_form(word: str) -> str:
    """The inflection a word looks like, known verb or not ('s', 'ing', 'ed' or 'base')."""
    for suffix in ("ing", "ed", "s"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return suffix
    return "base"


def _is_base_verb(word: str | None) -> bool:
    return word is not None and (word in _VERB_BASES or word in _VERB_ED) and word not in _ADVERBS


@dataclass
class _Reading:
    """What `_classify` knows of the words left of the one it decides."""

    prev: int = _START
    run_words: list[str] = field(default_factory=list)   # kept words of the current phrase
    run_det: str | None = None         # the determiner that opened the current phrase
    last_det: str | None = None
    last_verb_form: str | None = None  # inflection of the last verb ("barks" -> "s")

    def read(self, w: str, kind: int, form: str | None) -> None:
        """Move past word `w` of kind `kind` (its verb form `form`)."""
        if kind in (_NOUN, _ADJ):
            if not self.run_words:
                self.run_det = self.last_det if self.prev == _DET else None
            self.run_words.append(w)
        else:
            self.run_words = []
        if kind == _DET:
            self.last_det = w
        if kind == _VERB:
            self.last_verb_form = _suffix_form(w) if form in (None, "ed") else form
        self.prev = kind


def _classify(words: list[str]) -> list[int]:
    """The kind of every token, decided left to right from the token's neighbours."""
    kinds: list[int] = []
    reading = _Reading()
    for i, w in enumerate(words):
        form = _verb_form(w)
        kind = _function_kind(words, i, reading)
        if kind is None:
            kind = _content_kind(words, i, reading, form)
        kinds.append(kind)
        reading.read(w, kind, form)
    return kinds


def _function_kind(words: list[str], i: int, reading: _Reading) -> int | None:
    """The kind of token `i` when its spelling and its neighbours decide it (function words,
    punctuation, set phrases, known adjectives and adverbs); None for a content word."""
    w = words[i]
    nxt = words[i + 1] if i + 1 < len(words) else None
    before = words[i - 1] if i > 0 else None
    prev = reading.prev
    after_content = prev in (_NOUN, _ADJ) and bool(reading.run_words)
    if w == "'s":
        # "a man's scream": the owner is a phrase of its own, what follows is determined.
        return _AUX if before in _PRONOUNS else _DET
    if w == "," and reading.last_verb_form is not None:
        return _CONJ_AFTER_VERB                        # "a truck starts, honks ..."
    if not w[0].isalnum():
        return _FUNC                                   # punctuation
    if w.isdigit() or w in _DETERMINERS or (w in _QUANTITY_NOUNS and nxt == "of"):
        return _DET
    if w in _PRONOUNS:
        return _PRON
    if w in _AUXILIARIES or (w == "to" and _verb_form(nxt) == "base"):
        return _AUX
    if w in _PREPOSITIONS:
        return _FUNC
    if w in _CONJUNCTIONS:
        return _CONJ_AFTER_VERB if reading.last_verb_form is not None else _FUNC
    if w in _GENERIC_SOUND_NOUNS and nxt == "of":
        return _FUNC                                   # "the sound of rain" -> rain
    if w in _PLACE_FILLERS and i >= 2 and words[i - 2] == "in":
        return _FUNC                                   # "in the distance"
    if (before, w) in _COMPOUNDS and after_content or (w, nxt) in _COMPOUNDS:
        return _NOUN
    if prev == _VERB and (w in _PARTICLES or w in _ADVERBS):
        return _FUNC                                   # "slams shut", "flies away"
    if w in _ADJECTIVES:
        return _ADJ
    if _is_adverb(w):
        return _FUNC
    return None


def _content_kind(words: list[str], i: int, reading: _Reading, form: str | None) -> int:
    """Noun or verb for content word `i`, from its inflection `form` and the phrase it is in."""
    w = words[i]
    nxt = words[i + 1] if i + 1 < len(words) else None
    prev, run_det, last_verb_form = reading.prev, reading.run_det, reading.last_verb_form
    after_content = prev in (_NOUN, _ADJ) and bool(reading.run_words)
    singular_np = run_det in _SINGULAR_DETERMINERS
    plural_np = run_det in _PLURAL_DETERMINERS or bool(run_det and run_det.isdigit()
                                                       and run_det != "1")
    if prev == _CONJ_AFTER_VERB and last_verb_form == (form or _suffix_form(w)) and (
            form is not None or last_verb_form != "base"):
        return _VERB                                   # "coughs and sputters"
    if form is None:
        if (after_content and singular_np and w.endswith("s")
                and not w.endswith(("ss", "us", "is")) and not _is_base_verb(nxt)):
            return _VERB                               # "a camel groans"
        if (w.endswith("ed") and len(w) >= 6 and w not in _ED_NOUNS
                and (after_content or prev in (_PRON, _AUX))):
            return _VERB                               # "a ball bounced"
        return _NOUN
    if prev in (_PRON, _AUX):
        return _VERB                                   # "he dies", "is loosed"
    if prev == _VERB:
        # "starts running"; a plural straight after a verb is its object ("plays drums").
        return _NOUN if form == "s" else _VERB
    if prev == _DET:
        return _NOUN                                   # "a crash", "a splashing step"
    if prev == _ADJ and form in ("s", "base"):
        return _NOUN                                   # "loud bangs", "a dying scream"
    if form == "ing":
        return _VERB                                   # "a man hammering", "chopping wood"
    if not after_content:
        return _NOUN                                   # "knocks on a door", "with a fizz"
    if form == "s":
        # "a dog barks" (verb) vs "rain drops hit the roof" (plural noun before a base
        # verb) and "three shotgun blasts"; "a ..." opens a singular phrase: a verb there.
        plural_head = plural_np or (not singular_np and _is_base_verb(nxt))
        return _NOUN if plural_head else _VERB
    if form == "base":
        # "swords clash" (verb after a plural) vs "a door slam" (compound noun).
        return _VERB if _looks_plural(reading.run_words[-1]) else _NOUN
    return _VERB                                       # "a glass broke"


def noun_phrases(caption: str) -> list[str]:
    """Noun phrases of a caption, lowercase, in order, without duplicates.

    'a dog barks at a red car door' -> ['dog', 'red car door'];
    'a man hammering a nail into wood' -> ['man', 'nail', 'wood'].
    Phrases made only of adjectives ('something metallic') are dropped. The result may be
    empty (a caption of only verbs). Raises CaptionError for an empty caption.
    """
    if not isinstance(caption, str) or not caption.strip():
        raise CaptionError("The caption is empty: describe the sound, e.g. 'a dog barks'.")
    words = _tokens(caption)
    kinds = _classify(words)
    phrases: list[str] = []
    run: list[str] = []
    for w, kind in [*zip(words, kinds), ("", _FUNC)]:
        if kind in (_NOUN, _ADJ):
            run.append(w)
            continue
        if run and not all(word in _ADJECTIVES for word in run):
            phrase = " ".join(run)
            if phrase not in phrases:
                phrases.append(phrase)
        run = []
    return phrases
