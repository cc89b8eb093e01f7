"""Caption validation and noun phrases for the detector's vocabulary."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from foley_core.captions import noun_phrases, validate_caption
from foley_core.errors import CaptionError

SHARED = Path(__file__).resolve().parents[2] / "shared"
MANIFEST = SHARED / "sfx" / "manifest.csv"

CASES = [
    # the task's examples
    ("a dog barks at a red car door", ["dog", "red car door"]),
    ("footsteps on gravel", ["footsteps", "gravel"]),
    ("a man hammering a nail into wood", ["man", "nail", "wood"]),
    ("glass shatters", ["glass"]),
    # sound words that are nouns after a determiner/adjective, verbs after a noun
    ("a door slam and a knock", ["door slam", "knock"]),
    ("a loud crash", ["loud crash"]),
    ("a heavy door slams shut", ["heavy door"]),
    ("swords clash", ["swords"]),
    ("rain drops hit the roof", ["rain drops", "roof"]),
    ("wind chimes ring", ["wind chimes"]),
    ("two dogs bark", ["dogs"]),
    ("three shotgun blasts", ["shotgun blasts"]),
    ("a drummer plays drums", ["drummer", "drums"]),
    ("an open window", ["open window"]),
    ("doors open slowly", ["doors"]),
    # possessives, pronouns, generic sound nouns, quantities, quotes, punctuation
    ("a woman's high-pitched scream", ["woman", "high-pitched scream"]),
    ("it's raining on a tin roof", ["tin roof"]),
    ("the sound of rain on a window", ["rain", "window"]),
    ("thunder rumbles in the distance", ["thunder"]),
    ("a flock of birds flying overhead", ["birds"]),
    ('a crowd goes "oooh"', ["crowd"]),
    ('"a dog barks"', ["dog"]),
    ("Keys jingling, then a lock clicks.", ["keys", "lock"]),
    ("A Dog BARKS!", ["dog"]),
    ("something metallic", []),
    ("a car horn honks twice", ["car horn"]),
    ("people talking in a busy restaurant", ["people", "busy restaurant"]),
    ("a person typing on a keyboard", ["person", "keyboard"]),
    ("water pours into a glass", ["water", "glass"]),
    ("a dog barks and a cat meows", ["dog", "cat"]),
]

# Captions taken verbatim from ../shared/sfx/manifest.csv.
MANIFEST_CASES = [
    ("a hand saw cutting wood", ["hand saw", "wood"]),
    ("an arrow thuds into a target", ["arrow", "target"]),
    ("a projectile hits flesh with a wet thud", ["projectile", "flesh", "wet thud"]),
    ("a sling whips a stone away", ["sling", "stone"]),
    ("a sling stone clanks off metal", ["sling stone", "metal"]),
    ("harvesting grain with rustling stalks", ["grain", "stalks"]),
    ("a man's dying scream", ["man", "dying scream"]),
    ("a man cries out as he dies", ["man"]),
    ("a bowstring twangs as an arrow is loosed", ["bowstring", "arrow"]),
    ("a piston engine coughs and sputters", ["piston engine"]),
    ("an old truck starts, honks its horn and pulls away", ["old truck", "horn"]),
    ("a glove compartment lid closes", ["glove compartment lid"]),
    ("helicopter rotor blades thumping", ["helicopter rotor blades"]),
    ("landing gear locks with a clunk", ["landing gear", "clunk"]),
    ("a spent shell casing clinks on the floor", ["spent shell casing", "floor"]),
    ("a camel groans", ["camel"]),
    ("someone jumps into water with a splash", ["water", "splash"]),
    ("a wooden ship creaks as it moves through water", ["wooden ship", "water"]),
    ("a gust of wind", ["wind"]),
    ("a barred steel gate opens", ["barred steel gate"]),
    ("tropical birds calling in a jungle", ["tropical birds", "jungle"]),
    ("a spear thrust", ["spear thrust"]),
    ("wood splinters and breaks", ["wood"]),
    ("a V10 racing engine revving", ["v10 racing engine"]),
]


@pytest.mark.parametrize("caption, expected", CASES + MANIFEST_CASES)
def test_noun_phrases(caption: str, expected: list[str]) -> None:
    assert noun_phrases(caption) == expected


@pytest.mark.skipif(not MANIFEST.exists(), reason="shared data (../shared) not present")
def test_manifest_cases_are_real_captions() -> None:
    captions = {row["caption"] for row in csv.DictReader(open(MANIFEST, encoding="utf-8"))}
    missing = [c for c, _ in MANIFEST_CASES if c not in captions]
    assert not missing


@pytest.mark.skipif(not MANIFEST.exists(), reason="shared data (../shared) not present")
def test_every_manifest_caption_gives_clean_phrases() -> None:
    rows = list(csv.DictReader(open(MANIFEST, encoding="utf-8")))
    function_words = {"a", "an", "the", "of", "on", "in", "into", "with", "and", "is", "it",
                      "someone", "as", "at", "to", "from"}
    empty = []
    for caption in {row["caption"] for row in rows}:
        phrases = noun_phrases(caption)
        if not phrases:
            empty.append(caption)
        assert len(phrases) == len(set(phrases)), caption
        words = re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", caption.lower().replace("'s", ""))
        text = " " + " ".join(words) + " "
        for phrase in phrases:
            assert phrase == phrase.lower().strip() and phrase, caption
            assert f" {phrase} " in text, (caption, phrase)        # a contiguous span
            assert not set(phrase.split()) & function_words, (caption, phrase)
    # Only captions without any noun ("someone walking") may give nothing.
    assert len(empty) <= 3, empty


@pytest.mark.skipif(not MANIFEST.exists(), reason="shared data (../shared) not present")
def test_manifest_category_objects_are_found() -> None:
    """The visible object of a category shows up as (the head of) a phrase."""
    rows = list(csv.DictReader(open(MANIFEST, encoding="utf-8")))
    for category, head in [("door", "door"), ("glass", "glass"), ("rain", "rain")]:
        captions = {r["caption"] for r in rows
                    if r["category"] == category and head in r["caption"]}
        assert captions
        for caption in captions:
            assert any(head in phrase.split() for phrase in noun_phrases(caption)), caption


@pytest.mark.parametrize("caption", ["", "   ", "\n\t", None])
def test_empty_caption_is_a_caption_error(caption) -> None:
    with pytest.raises(CaptionError, match="empty"):
        noun_phrases(caption)
    with pytest.raises(CaptionError, match="empty"):
        validate_caption(caption)


def test_validate_caption() -> None:
    assert validate_caption("  a dog\n\tbarks   loudly ") == "a dog barks loudly"
    assert validate_caption("glass\u00a0shatters\u200b") == "glass shatters"
    assert validate_caption("x" * 300) == "x" * 300
    with pytest.raises(CaptionError, match="301 characters long; the limit is 300"):
        validate_caption("x" * 301)
    with pytest.raises(CaptionError, match="limit is 10"):
        validate_caption("a dog barks loudly", max_chars=10)
    with pytest.raises(CaptionError, match="text"):
        validate_caption(42)  # type: ignore[arg-type]
