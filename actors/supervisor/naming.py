"""Container names: validation, Docker's conflict text, and generated `adjective_surname` names.

A name is stored without the leading "/" that the API shows (`Names: ["/web"]`, inspect
`Name: "/web"`); clients may send either form. Generated names pair an adjective with the
surname of a scientist or engineer, as Docker does; the word lists are flotta's own.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from actors.errdefs import Conflict, InvalidParameter

NAME_PATTERN = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
GENERATE_ATTEMPTS_MAX = 16

ADJECTIVES = (
    "agile", "amazing", "bold", "brave", "bright", "calm", "charming", "cheerful", "clever",
    "cool", "curious", "daring", "dazzling", "determined", "eager", "elastic", "elegant",
    "epic", "fervent", "festive", "focused", "friendly", "funny", "gallant", "gentle",
    "glowing", "happy", "hardy", "helpful", "humble", "jolly", "keen", "kind", "lively",
    "loyal", "lucid", "magical", "merry", "mighty", "modest", "nice", "nimble", "noble",
    "patient", "peaceful", "pensive", "plucky", "polite", "proud", "quick", "quiet", "radiant",
    "relaxed", "serene", "sharp", "silly", "sleepy", "steady", "stoic", "sunny", "swift",
    "tender", "tidy", "trusty", "upbeat", "vibrant", "vigilant", "warm", "wise", "witty",
    "youthful", "zealous",
)  # fmt: skip

SURNAMES = (
    "agnesi", "archimedes", "babbage", "banach", "bardeen", "bell", "bohr", "boltzmann",
    "boole", "borg", "brahe", "cannon", "carson", "cerf", "chandrasekhar", "copernicus",
    "cori", "curie", "darwin", "dijkstra", "dirac", "einstein", "euclid", "euler", "faraday",
    "fermat", "fermi", "feynman", "franklin", "galileo", "gauss", "germain", "goodall",
    "hamilton", "hawking", "heisenberg", "hertz", "hilbert", "hodgkin", "hopper", "hubble",
    "hypatia", "johnson", "joliot", "kalam", "kepler", "knuth", "kowalevski", "lamarr",
    "lamport", "leakey", "leibniz", "lovelace", "margulis", "maxwell", "meitner", "mendel",
    "mirzakhani", "morse", "newton", "nightingale", "noether", "pascal", "pasteur", "planck",
    "poincare", "ramanujan", "ride", "ritchie", "rosalind", "sagan", "shannon", "shockley",
    "somerville", "tesla", "thompson", "turing", "volta", "wiles", "wright", "wu", "yalow",
)  # fmt: skip


def normalize(name: str) -> str:
    """A name as stored: without the leading "/" clients may send."""
    return name[1:] if name.startswith("/") else name


def validate(name: str) -> str:
    """The stored form of a user-given name; InvalidParameter with Docker's text if bad."""
    stored = normalize(name)
    if not NAME_PATTERN.fullmatch(stored):
        raise InvalidParameter(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return stored


def name_conflict(name: str, holder_id: str) -> Conflict:
    return Conflict(
        f'Conflict. The container name "/{name}" is already in use by container "{holder_id}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )


def generate(rng: random.Random, taken: Callable[[str], bool]) -> str:
    """A free `adjective_surname` name; after collisions a digit is appended, as Docker does."""
    for attempt in range(GENERATE_ATTEMPTS_MAX):
        name = f"{rng.choice(ADJECTIVES)}_{rng.choice(SURNAMES)}"
        if attempt > 0:
            name += str(rng.randrange(10))
        if not taken(name):
            return name
    # Every draw collided (tens of thousands of containers): widen with more digits.
    while True:
        name = f"{rng.choice(ADJECTIVES)}_{rng.choice(SURNAMES)}{rng.randrange(10**6)}"
        if not taken(name):
            return name
