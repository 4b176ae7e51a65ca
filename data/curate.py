"""LIMA-style curation: choose the training items for quality and diversity, not at random.

Each item gets a quality score from checks a careful editor would make (answer length in the style
sheet's range, a clean ending, no prompt artefacts, an answer that addresses the question's terms).
Selection then fills per-(domain, difficulty) quotas proportional to the corpus, and inside each
stratum picks greedily by quality minus redundancy (maximal marginal relevance over question
embeddings) while rotating through topics, so the 1,000 items cover the topics evenly.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict

import numpy as np

from data.embedding import embed_questions
from data.schema import QAItem

_ARTEFACTS = re.compile(r"###|```|<\|im_|\bAs an AI\b|\bI hope this helps\b", re.I)
_STOP = set("a an the of in on to for and or is are what why how does do with by be it its this that which "
            "when".split())


def quality_score(item: QAItem) -> float:
    """A score in [0, 1]; higher is a better training example for the house style."""
    words = item.answer.split()
    n = len(words)
    if 80 <= n <= 160:
        length = 1.0
    elif 50 <= n <= 200:
        length = 0.7
    else:
        length = 0.3
    ending = 1.0 if item.answer.rstrip().endswith((".", "!", ")", "%")) else 0.0
    clean = 0.0 if _ARTEFACTS.search(item.answer) else 1.0
    q_terms = {w for w in re.findall(r"[a-z0-9]+", item.question.lower()) if w not in _STOP and len(w) > 2}
    first = item.answer.split(". ")[0].lower()
    focus = len([t for t in q_terms if t in first]) / len(q_terms) if q_terms else 0.5
    diversity = len({w.lower() for w in words}) / max(n, 1)
    return 0.35 * length + 0.2 * ending + 0.2 * clean + 0.15 * focus + 0.1 * min(1.0, diversity / 0.6)


def stratum_quotas(items: list[QAItem], total: int) -> dict[tuple[str, str], int]:
    """Largest-remainder apportionment of `total` over (domain, difficulty) strata."""
    counts = Counter((it.domain, it.difficulty or "unknown") for it in items)
    n = sum(counts.values())
    if total > n:
        raise ValueError(f"cannot select {total} training items from {n} items")
    raw = {k: total * c / n for k, c in counts.items()}
    quotas = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: (-(raw[k] - quotas[k]), k))[: total - sum(quotas.values())]:
        quotas[k] += 1
    return quotas


def select_training_items(
    items: list[QAItem],
    total: int,
    embeddings: dict[str, np.ndarray] | None = None,
    redundancy_weight: float = 0.5,
) -> list[QAItem]:
    """Return `total` items chosen for quality and diversity; deterministic for a given input.

    embeddings: question vectors by item id (unit length); computed with the bundled MiniLM if None.
    """
    items = sorted(items, key=lambda it: it.id)
    vectors = embed_questions(items, embeddings)
    index = {it.id: k for k, it in enumerate(items)}
    quality = {it.id: quality_score(it) for it in items}
    quotas = stratum_quotas(items, total)
    by_stratum: dict[tuple[str, str], list[QAItem]] = defaultdict(list)
    for it in items:
        by_stratum[(it.domain, it.difficulty or "unknown")].append(it)

    chosen: list[QAItem] = []
    topic_count: Counter = Counter()  # (domain, topic) -> items chosen so far, across difficulty strata
    for stratum in sorted(by_stratum):
        domain = stratum[0]
        pool = by_stratum[stratum]
        quota = quotas.get(stratum, 0)
        max_sim = {it.id: 0.0 for it in pool}
        remaining = {it.id: it for it in pool}
        for _ in range(min(quota, len(pool))):
            # the domain's least-covered topic that still has candidates, so no topic crowds out the others
            live = sorted({c.topic for c in remaining.values()})
            topic = min(live, key=lambda t: (topic_count[(domain, t)], t))
            cands = [c for c in remaining.values() if c.topic == topic]
            best = max(cands, key=lambda c: (quality[c.id] - redundancy_weight * max_sim[c.id], c.id))
            chosen.append(best)
            topic_count[(domain, topic)] += 1
            del remaining[best.id]
            if remaining:
                sims = vectors[[index[c] for c in remaining]] @ vectors[index[best.id]]
                for cid, sim in zip(list(remaining), sims):
                    max_sim[cid] = max(max_sim[cid], float(sim))
    return sorted(chosen, key=lambda it: it.id)
