"""Extract concept mentions and typed triples from text with spaCy.

Mentions: a PhraseMatcher over every concept's name, aliases and their plural/singular variants
(case-insensitive; the longest match wins), on `spacy.blank("en")` with a sentencizer, or on
`en_core_web_sm` when it is installed (then lemmas and noun chunks are used too).
Typed relations: lexical patterns on the words between two mentions in one sentence ("X is a kind of
Y", "X uses Y", "unlike X, Y", "X requires Y", "Y such as X", ...), each with a confidence.
Co-occurrence: RELATED_TO between concepts mentioned together in several items, weighted by
normalised PMI. Candidate new concepts: frequent noun phrases (noun chunks with the tagger, else
frequent word n-grams) that the vocabulary does not know. Every triple keeps its provenance.
"""
from __future__ import annotations

import logging
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable

from kg.schema import Concept, Triple

log = logging.getLogger(__name__)

# Patterns on the text *between* mention A (left) and mention B (right). The result says which way the
# triple points: "ab" = A REL B, "ba" = B REL A. Anchored to the whole gap so a pattern never skips words.
_ART = r"(?:an? |the )?"
GAP_PATTERNS: list[tuple[str, str, str, float]] = [
    (rf"(?:is|are) {_ART}(?:kind|type|form|special case|variant|family|class|example|instance)s? of {_ART}",
     "IS_A", "ab", 0.9),
    (rf"(?:is|are) {_ART}(?:specific |particular |common |popular |simple |classic )?(?:kind|type|form) of {_ART}",
     "IS_A", "ab", 0.9),
    (r", (?:an? |one )?(?:kind|type|form|special case) of (?:an? |the )?", "IS_A", "ab", 0.85),
    (r",? such as ", "IS_A", "ba", 0.85),
    (r",? (?:including|e\.g\.,?|for example,?) ", "IS_A", "ba", 0.75),
    (r",? and other ", "IS_A", "ab", 0.8),
    (rf"(?:is|are) {_ART}(?:part|component|step|stage|building block|layer)s? of {_ART}", "PART_OF", "ab", 0.9),
    (r"(?:consists? of|is composed of|is made of|contains|comprises) (?:an? |the |a set of |several |many )?",
     "PART_OF", "ba", 0.75),
    (r"(?:uses?|relies on|rely on|is based on|are based on|builds? on|employs?|exploits?|leverages?|applies|apply) "
     r"(?:an? |the )?", "USES", "ab", 0.8),
    (r"(?:is|are) (?:computed|estimated|implemented|trained|solved) (?:with|using|by|via) (?:an? |the )?",
     "USES", "ab", 0.8),
    (r"(?:is|are) (?:commonly |often |typically |mainly |widely )?used "
     r"(?:for|in|to (?:compute|estimate|perform|implement|solve|detect|test|measure)) (?:an? |the )?",
     "USED_FOR", "ab", 0.8),
    # the "against" sense is its own type: "dropout is used to prevent overfitting" is not "used for overfitting"
    (r"(?:is|are) (?:commonly |often |typically |mainly |widely )?used to (?:prevent|reduce|avoid) (?:an? |the )?",
     "MITIGATES", "ab", 0.8),
    (r"(?:is|are) (?:useful|designed|needed) for (?:an? |the )?", "USED_FOR", "ab", 0.75),
    (r"(?:helps?|serves?) to (?:prevent|reduce|avoid) (?:an? |the )?", "MITIGATES", "ab", 0.75),
    (r"(?:helps?|serves?) to (?:detect|control|estimate) (?:an? |the )?", "USED_FOR", "ab", 0.75),
    (r"(?:requires?|depends on|builds on the idea of) (?:an? |the )?", "PREREQUISITE_OF", "ba", 0.7),
    (r"(?:is|are) (?:a )?prerequisites? (?:for|of) (?:an? |the )?", "PREREQUISITE_OF", "ab", 0.9),
    (r"(?:measures?|quantif(?:y|ies)|(?:is|are) (?:a )?(?:measure|metric)s? of) (?:an? |the |how much )?",
     "MEASURES", "ab", 0.85),
    (r" (?:versus|vs\.?|rather than|instead of|compared (?:with|to)|as opposed to) ", "CONTRASTS_WITH", "ab", 0.8),
    (r"(?:differs? from|contrasts? with) (?:an? |the )?", "CONTRASTS_WITH", "ab", 0.85),
]
# patterns whose cue comes before both mentions: "unlike A, B ..."
LEAD_PATTERNS: list[tuple[str, str, float]] = [
    (r"\b(?:unlike|in contrast to|compared with|compared to) (?:an? |the )?$", "CONTRASTS_WITH", 0.8),
]
_COMPILED = [(re.compile(rf"^\s*{p}\s*$", re.I), rel, d, c) for p, rel, d, c in GAP_PATTERNS]
_LEAD = [(re.compile(p, re.I), rel, c) for p, rel, c in LEAD_PATTERNS]
MAX_GAP_WORDS = 8
STOPWORDS = set(
    "a an the of in on to for and or is are was be been by with as at from that this these those it its into than "
    "then so such which what when where how why can could may might will would should must not no do does did has "
    "have had more most less least each every any some many much very also only both either neither one two".split()
)


@dataclass(frozen=True)
class Mention:
    concept: str
    start: int  # character offsets in the text
    end: int


@dataclass
class Document:
    id: str  # QA id or note file name
    text: str
    domain: str | None = None


def load_nlp():
    """en_core_web_sm when installed (tagger, parser, lemmas), else a blank English pipeline."""
    import spacy

    try:
        nlp = spacy.load("en_core_web_sm", disable=["ner"])
        log.info("using en_core_web_sm")
    except OSError:
        nlp = spacy.blank("en")
    if "parser" not in nlp.pipe_names and "senter" not in nlp.pipe_names and "sentencizer" not in nlp.pipe_names:
        nlp.add_pipe("sentencizer")
    return nlp


class ConceptExtractor:
    def __init__(self, concepts: dict[str, Concept], forms: dict[str, list[str]] | None = None, nlp=None):
        from spacy.matcher import PhraseMatcher

        from kg.checks import case_sensitive
        from kg.resolve import _plural, _singular_phrase, mention_forms

        self.nlp = nlp or load_nlp()
        self.concepts = concepts
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        forms = forms or mention_forms(concepts)
        self.label_to_concept: dict[int, str] = {}
        # per concept: lower-cased forms that match in any casing, and exact spellings of the case-sensitive ones
        self.any_case: dict[str, set[str]] = {}
        self.exact: dict[str, set[str]] = {}
        for cid, texts in forms.items():
            self.matcher.add(cid, [self.nlp.make_doc(t) for t in texts])
            self.label_to_concept[self.nlp.vocab.strings[cid]] = cid
            self.any_case[cid] = {_squash(t).lower() for t in texts if not case_sensitive(t)}
            self.exact[cid] = {v for t in texts if case_sensitive(t) for v in _spellings(_squash(t))}
        # per concept: form (lower case, with its plural/singular variants) -> cue words its context must have
        self.context: dict[str, dict[str, list[str]]] = {}
        for cid, c in concepts.items():
            for alias, cues in (c.alias_context or {}).items():
                for variant in (alias, _plural(alias), _singular_phrase(alias)):
                    if variant:
                        self.context.setdefault(cid, {})[_squash(variant).lower()] = list(cues)

    def accepts(self, cid: str, surface: str, context: str) -> bool:
        """Whether `surface`, matched to concept `cid` ignoring case, is a mention in a text saying `context`."""
        from kg.checks import context_allows

        text = _squash(surface)
        if text.lower() not in self.any_case.get(cid, ()) and text not in self.exact.get(cid, ()):
            return False  # "map" is not "mAP", "svm" in a URL is not "SVM"
        cues = self.context.get(cid, {}).get(text.lower())
        return cues is None or context_allows(cues, context)

    def mentions(self, doc, context: str | None = None) -> list[Mention]:
        """Concept mentions in `doc`; `context` (default: the doc's own text) decides context-ruled aliases."""
        from spacy.util import filter_spans

        context = doc.text if context is None else context
        spans = []
        for match_id, start, end in self.matcher(doc):
            span = doc[start:end]
            cid = self.nlp.vocab.strings[match_id]
            if not self.accepts(cid, span.text, context):
                continue
            span.label_ = cid
            spans.append(span)
        return [Mention(s.label_, s.start_char, s.end_char) for s in filter_spans(spans)]

    def sentence_triples(self, text: str, mentions: list[Mention], doc_id: str) -> list[Triple]:
        """Typed triples from adjacent mention pairs in one sentence."""
        out = []
        for a, b in zip(mentions, mentions[1:]):
            if a.concept == b.concept:
                continue
            gap = text[a.end : b.start]
            if len(gap.split()) > MAX_GAP_WORDS:
                continue
            for pattern, rel, direction, conf in _COMPILED:
                if pattern.match(gap):
                    h, t = (a.concept, b.concept) if direction == "ab" else (b.concept, a.concept)
                    out.append(Triple(h, rel, t, conf, "pattern", [doc_id], text.strip()))
                    break
            lead = text[max(0, a.start - 40) : a.start]
            if re.search(r",\s*$", gap) or gap.strip() in (",", ""):
                for pattern, rel, conf in _LEAD:
                    if pattern.search(lead):
                        out.append(Triple(a.concept, rel, b.concept, conf, "pattern", [doc_id], text.strip()))
                        break
        return out

    def extract(self, docs: Iterable[Document], progress: bool = False):
        """(pattern triples, mentions per document id) for every document; see `drop_generic`."""
        docs = list(docs)
        triples: list[Triple] = []
        mentions_by_doc: dict[str, Counter] = {}
        stream = self.nlp.pipe((d.text for d in docs), batch_size=64)
        if progress:
            from tqdm.auto import tqdm

            stream = tqdm(stream, total=len(docs), desc="extracting", unit="doc")
        for d, doc in zip(docs, stream):
            counter: Counter = Counter()
            for sent in doc.sents:
                ms = self.mentions(sent.as_doc(), context=d.text)
                counter.update(m.concept for m in ms)
                triples.extend(self.sentence_triples(sent.text, ms, d.id))
            mentions_by_doc[d.id] = counter
        return merge_triples(triples), mentions_by_doc


GENERIC_MAX_DF = 0.08


def generic_concepts(mentions_by_doc: dict[str, Counter], max_df: float = GENERIC_MAX_DF) -> set[str]:
    """Concepts mentioned in more than `max_df` of the documents ("model", "mean", "data"): too generic
    to carry a typed relation read from one sentence."""
    df = Counter(c for counter in mentions_by_doc.values() for c in counter)
    limit = max(3, max_df * len(mentions_by_doc))
    return {c for c, n in df.items() if n > limit}


def drop_generic(triples: Iterable[Triple], generic: set[str]) -> list[Triple]:
    return [t for t in triples if t.head not in generic and t.tail not in generic]


def merge_triples(triples: Iterable[Triple]) -> list[Triple]:
    """One triple per (head, relation, tail): provenance united, confidence raised by repeated evidence."""
    merged: dict[tuple, Triple] = {}
    for t in triples:
        if t.key in merged:
            m = merged[t.key]
            m.provenance = sorted(set(m.provenance) | set(t.provenance))
            m.confidence = min(0.99, 1 - (1 - m.confidence) * (1 - t.confidence) ** 0.5)
        else:
            merged[t.key] = Triple(t.head, t.relation, t.tail, t.confidence, t.source, sorted(set(t.provenance)),
                                   t.sentence)
    return sorted(merged.values(), key=lambda t: t.key)


def cooccurrence_triples(mentions_by_doc: dict[str, Counter], min_count: int = 2, min_npmi: float = 0.25,
                         max_per_concept: int = 12) -> list[Triple]:
    """RELATED_TO between concepts that appear together in at least `min_count` documents, by NPMI."""
    n_docs = len(mentions_by_doc)
    df: Counter = Counter()
    pair_docs: dict[tuple[str, str], list[str]] = defaultdict(list)
    for doc_id, counter in mentions_by_doc.items():
        cs = sorted(counter)
        df.update(cs)
        for i, a in enumerate(cs):
            for b in cs[i + 1 :]:
                pair_docs[(a, b)].append(doc_id)
    scored = []
    for (a, b), docs in pair_docs.items():
        if len(docs) < min_count:
            continue
        p_ab = len(docs) / n_docs
        pmi = math.log(p_ab / ((df[a] / n_docs) * (df[b] / n_docs)))
        npmi = pmi / -math.log(p_ab) if p_ab < 1 else 1.0
        if npmi >= min_npmi:
            scored.append((npmi, a, b, docs))
    # keep each concept's strongest associations only, so hubs do not connect to everything
    per: Counter = Counter()
    out = []
    for npmi, a, b, docs in sorted(scored, key=lambda s: (-s[0], s[1], s[2])):
        if per[a] >= max_per_concept or per[b] >= max_per_concept:
            continue
        per[a] += 1
        per[b] += 1
        out.append(Triple(a, "RELATED_TO", b, round(0.5 + 0.45 * npmi, 4), "cooccurrence", sorted(docs), ""))
    return sorted(out, key=lambda t: t.key)


def _squash(text: str) -> str:
    return " ".join(text.split())


def _spellings(form: str) -> set[str]:
    """A case-sensitive form as written, and capitalised at a sentence start when it begins with a lower-case
    word ("big-O" -> "Big-O"); "mAP" gets no such variant, since "MAP" is another abbreviation."""
    return {form, form[0].upper() + form[1:]} if form[:2].islower() else {form}


_WORD = re.compile(r"[A-Za-z][A-Za-z\-]+")
# words that never end or start a technical noun phrase found without a tagger
_NOT_NOUNISH = re.compile(r"(?:ly|ing|ed|ive|ful|ous|able|ible|ic|al)$")
_SYMBOLS = set("lambda mu sigma alpha beta gamma theta epsilon pi rho tau".split())


def _phrase_ok(gram: list[str]) -> bool:
    from spacy.lang.en.stop_words import STOP_WORDS

    if any(w in STOP_WORDS or w in STOPWORDS or w in _SYMBOLS for w in gram):
        return False
    # the head (last word) must look like a noun; modifiers may be adjectives ("sample size", "weight matrix")
    return not _NOT_NOUNISH.search(gram[-1]) and len(gram[-1]) > 2


def candidate_phrases(docs: list[Document], known_forms: set[str], nlp=None, min_docs: int = 8,
                      max_words: int = 3) -> dict[str, list[str]]:
    """Frequent noun phrases the vocabulary lacks: phrase -> ids of documents using it."""
    seen: dict[str, set[str]] = defaultdict(set)
    use_chunks = nlp is not None and "parser" in nlp.pipe_names
    for d in docs:
        if use_chunks:
            phrases = {c.text.lower() for c in nlp(d.text).noun_chunks}
        else:
            words = [w.lower() for w in _WORD.findall(d.text)]
            phrases = set()
            for n in range(2, max_words + 1):
                for i in range(len(words) - n + 1):
                    gram = words[i : i + n]
                    if not _phrase_ok(gram):
                        continue
                    phrases.add(" ".join(gram))
        for p in phrases:
            p = re.sub(r"^(?:the|a|an) ", "", p)
            if 2 <= len(p.split()) <= max_words and p not in known_forms:
                seen[p].add(d.id)
    frequent = {
        p: sorted(ids)
        for p, ids in seen.items()
        if len(ids) >= min_docs
        and len(set(p.split())) == len(p.split())  # "log log", "var var": formula debris
        and not any(p in k for k in known_forms if len(k) > len(p))  # a fragment of a known name
    }
    # drop phrases contained in a longer frequent phrase with (almost) the same documents
    keep = {}
    for p, ids in frequent.items():
        if any(p != q and p in q and len(frequent[q]) >= 0.8 * len(ids) for q in frequent):
            continue
        keep[p] = ids
    return keep
