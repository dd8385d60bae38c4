"""A built-in English→German toy corpus: a small grammar with reordering and agreement.

Written for the project's main job and tests, so that nothing has to be downloaded. The grammar makes the
model learn attention rather than copying:

* agreement: German articles and adjective endings follow gender, number and case
  ("the big dog sees the cat" → "der große Hund sieht die Katze", "… sees the dog" → "… sieht den Hund");
* reordering: the perfect tense puts the participle last ("has seen the dog" → "hat den Hund gesehen"),
  a fronted time adverb inverts subject and verb ("today the dog sleeps" → "heute schläft der Hund"),
  and a subordinate clause sends the finite verb to the end ("… that the dog sees the cat" →
  "…, dass der Hund die Katze sieht").

``python -m fairseq_vanilla synthetic --out DIR`` writes ``{train,valid,test}.{en,de}``.
"""

import os
import random
from typing import List, Tuple

from .io import write_lines

# noun: (english singular, english plural, german singular, german plural, gender)
NOUNS = [
    ("man", "men", "Mann", "Männer", "m"),
    ("dog", "dogs", "Hund", "Hunde", "m"),
    ("teacher", "teachers", "Lehrer", "Lehrer", "m"),
    ("boy", "boys", "Junge", "Jungen", "m"),
    ("woman", "women", "Frau", "Frauen", "f"),
    ("cat", "cats", "Katze", "Katzen", "f"),
    ("girl", "girls", "Mädchen", "Mädchen", "n"),
    ("child", "children", "Kind", "Kinder", "n"),
    ("horse", "horses", "Pferd", "Pferde", "n"),
    ("bird", "birds", "Vogel", "Vögel", "m"),
    ("doctor", "doctors", "Ärztin", "Ärztinnen", "f"),
    ("student", "students", "Student", "Studenten", "m"),
    ("farmer", "farmers", "Bauer", "Bauern", "m"),
    ("cook", "cooks", "Köchin", "Köchinnen", "f"),
    ("baby", "babies", "Baby", "Babys", "n"),
    ("neighbour", "neighbours", "Nachbar", "Nachbarn", "m"),
    ("sister", "sisters", "Schwester", "Schwestern", "f"),
    ("brother", "brothers", "Bruder", "Brüder", "m"),
    ("mouse", "mice", "Maus", "Mäuse", "f"),
    ("sheep", "sheep", "Schaf", "Schafe", "n"),
    ("king", "kings", "König", "Könige", "m"),
    ("queen", "queens", "Königin", "Königinnen", "f"),
    ("pupil", "pupils", "Schüler", "Schüler", "m"),
    ("nurse", "nurses", "Pflegerin", "Pflegerinnen", "f"),
]
# transitive verb: (en 3sg, en base, en participle, de 3sg, de 3pl, de participle)
TRANSITIVE = [
    ("sees", "see", "seen", "sieht", "sehen", "gesehen"),
    ("likes", "like", "liked", "mag", "mögen", "gemocht"),
    ("finds", "find", "found", "findet", "finden", "gefunden"),
    ("helps", "help", "helped", "hilft", "helfen", "geholfen"),
    ("calls", "call", "called", "ruft", "rufen", "gerufen"),
    ("visits", "visit", "visited", "besucht", "besuchen", "besucht"),
    ("hears", "hear", "heard", "hört", "hören", "gehört"),
    ("asks", "ask", "asked", "fragt", "fragen", "gefragt"),
    ("follows", "follow", "followed", "folgt", "folgen", "gefolgt"),
    ("feeds", "feed", "fed", "füttert", "füttern", "gefüttert"),
    ("paints", "paint", "painted", "malt", "malen", "gemalt"),
    ("thanks", "thank", "thanked", "dankt", "danken", "gedankt"),
]
DATIVE_VERBS = {"hilft", "folgt", "dankt"}  # their object is in the dative
# preposition: (english, german, case)
PREPOSITIONS = [
    ("with", "mit", "dat"),
    ("without", "ohne", "acc"),
    ("for", "für", "acc"),
    ("near", "bei", "dat"),
    ("behind", "hinter", "dat"),
    ("after", "nach", "dat"),
]
# intransitive verb: (en 3sg, en base, en participle, de 3sg, de 3pl, de participle, de auxiliary is "sein")
INTRANSITIVE = [
    ("sleeps", "sleep", "slept", "schläft", "schlafen", "geschlafen", False),
    ("laughs", "laugh", "laughed", "lacht", "lachen", "gelacht", False),
    ("runs", "run", "run", "läuft", "laufen", "gelaufen", True),
    ("sings", "sing", "sung", "singt", "singen", "gesungen", False),
    ("swims", "swim", "swum", "schwimmt", "schwimmen", "geschwommen", True),
]
# adjective: (english, german stem)
ADJECTIVES = [
    ("big", "groß"),
    ("small", "klein"),
    ("old", "alt"),
    ("young", "jung"),
    ("happy", "glücklich"),
    ("tired", "müde"),
    ("red", "rot"),
    ("clever", "klug"),
    ("hungry", "hungrig"),
    ("friendly", "freundlich"),
    ("brave", "mutig"),
    ("quiet", "leise"),
    ("strong", "stark"),
    ("lazy", "faul"),
    ("new", "neu"),
    ("poor", "arm"),
]
ADVERBS = [("today", "heute"), ("now", "jetzt"), ("yesterday", "gestern"), ("often", "oft"), ("tomorrow", "morgen")]
MATRIX = [("I know", "ich weiß"), ("she says", "sie sagt"), ("we believe", "wir glauben"), ("he thinks", "er denkt")]

# definite article by (gender or "pl", case)
ARTICLE = {
    ("m", "nom"): "der",
    ("f", "nom"): "die",
    ("n", "nom"): "das",
    ("pl", "nom"): "die",
    ("m", "acc"): "den",
    ("f", "acc"): "die",
    ("n", "acc"): "das",
    ("pl", "acc"): "die",
    ("m", "dat"): "dem",
    ("f", "dat"): "der",
    ("n", "dat"): "dem",
    ("pl", "dat"): "den",
}
# weak adjective ending after the definite article
ADJ_ENDING = {
    ("m", "nom"): "e",
    ("f", "nom"): "e",
    ("n", "nom"): "e",
    ("pl", "nom"): "en",
    ("m", "acc"): "en",
    ("f", "acc"): "e",
    ("n", "acc"): "e",
    ("pl", "acc"): "en",
    ("m", "dat"): "en",
    ("f", "dat"): "en",
    ("n", "dat"): "en",
    ("pl", "dat"): "en",
}


def noun_phrase(rng: random.Random, case: str) -> Tuple[str, str, bool]:
    """(english, german, plural) for 'the (adjective) noun' in the given German case."""
    en_sg, en_pl, de_sg, de_pl, gender = rng.choice(NOUNS)
    plural = rng.random() < 0.3
    key = ("pl" if plural else gender, case)
    de_noun = de_pl if plural else de_sg
    if plural and case == "dat" and not de_noun.endswith(("n", "s")):
        de_noun += "n"  # dative plural -n (Hunde → Hunden)
    en, de = ["the"], [ARTICLE[key]]
    if rng.random() < 0.4:
        adj_en, adj_de = rng.choice(ADJECTIVES)
        en.append(adj_en)
        de.append(adj_de.rstrip("e") + ADJ_ENDING[key])  # müde + e → müde, müde + en → müden
    en.append(en_pl if plural else en_sg)
    de.append(de_noun)
    return " ".join(en), " ".join(de), plural


def clause(rng: random.Random) -> Tuple[List[str], dict]:
    """One clause as parts: english words and the German pieces to be ordered by the caller."""
    subj_en, subj_de, plural = noun_phrase(rng, "nom")
    perfect = rng.random() < 0.3
    if rng.random() < 0.6:
        en3, enb, enp, de3, depl, depart = rng.choice(TRANSITIVE)
        obj_en, obj_de, _ = noun_phrase(rng, "dat" if de3 in DATIVE_VERBS else "acc")
        aux_de = "haben"
    else:
        en3, enb, enp, de3, depl, depart, sein = rng.choice(INTRANSITIVE)
        obj_en = obj_de = ""
        aux_de = "sein" if sein else "haben"
    if perfect:
        en_verb = ("have " if plural else "has ") + enp
        aux = {"haben": ("hat", "haben"), "sein": ("ist", "sind")}[aux_de][plural]
        finite, tail = aux, depart
    else:
        en_verb = enb if plural else en3
        finite, tail = (depl if plural else de3), ""
    if rng.random() < 0.35:  # a prepositional phrase after the object; German keeps the participle after it
        p_en, p_de, p_case = rng.choice(PREPOSITIONS)
        pp_en, pp_de, _ = noun_phrase(rng, p_case)
        obj_en = f"{obj_en} {p_en} {pp_en}".strip()
        obj_de = f"{obj_de} {p_de} {pp_de}".strip()
    en = " ".join(w for w in (subj_en, en_verb, obj_en) if w)
    return en, dict(subj=subj_de, finite=finite, obj=obj_de, tail=tail)


def german_main(parts: dict, fronted: str = "") -> str:
    """Verb-second order; a fronted adverb takes the first slot and the subject follows the verb."""
    rest = [parts["obj"], parts["tail"]]
    if fronted:
        words = [fronted, parts["finite"], parts["subj"]] + rest
    else:
        words = [parts["subj"], parts["finite"]] + rest
    return " ".join(w for w in words if w)


def german_subordinate(parts: dict) -> str:
    """Verb-final order: subject, object, participle, finite verb."""
    return " ".join(w for w in (parts["subj"], parts["obj"], parts["tail"], parts["finite"]) if w)


def sentence_pair(rng: random.Random) -> Tuple[str, str]:
    en, parts = clause(rng)
    kind = rng.random()
    if kind < 0.25:
        adv_en, adv_de = rng.choice(ADVERBS)
        en_s, de_s = f"{adv_en} {en}", german_main(parts, fronted=adv_de)
    elif kind < 0.5:
        m_en, m_de = rng.choice(MATRIX)
        en_s, de_s = f"{m_en} that {en}", f"{m_de} , dass {german_subordinate(parts)}"
    else:
        en_s, de_s = en, german_main(parts)
    cap = lambda s: s[0].upper() + s[1:]  # noqa: E731
    return cap(en_s) + ".", cap(de_s.replace(" ,", ",")) + "."


def generate(n: int, seed: int) -> List[Tuple[str, str]]:
    """``n`` (english, german) sentence pairs, the same for the same seed."""
    rng = random.Random(seed)
    return [sentence_pair(rng) for _ in range(n)]


def write_corpus(out: str, sizes=(("train", 12000), ("valid", 500), ("test", 500)), seed: int = 1) -> None:
    """Write ``{split}.{en,de}`` into ``out``; each split has its own seed, so splits rarely share pairs."""
    os.makedirs(out, exist_ok=True)
    for i, (split, n) in enumerate(sizes):
        pairs = generate(n, seed * 1000 + i)
        for lang, col in (("en", 0), ("de", 1)):
            write_lines(os.path.join(out, f"{split}.{lang}"), [p[col] for p in pairs])
