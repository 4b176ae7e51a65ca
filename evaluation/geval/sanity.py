"""Can this judge tell a good answer from a bad one? Planted pairs, their statistics, and agreement.

Planted pairs come from eval items: (a) the item's reference answer scored as the answer (a good answer,
which should score high) and (b) the reference answer of another question, shuffled in (a bad answer,
which should score low). A judge that cannot rank (a) above (b) cannot rank systems either; its scores are
then no quality measure, and the report says so next to them.

The verdict, per prompt and scoring method, over the pairs where both planted answers were scored:
- separation = wins / pairs, where a win is the reference scoring strictly above the shuffled answer
  (a tie counts against the judge: it did not tell the two apart);
- p = one-sided sign test (exact binomial, ties dropped) of wins against losses, H0: P(win) = 1/2;
- "separates" when separation >= MIN_SEPARATION (0.7) and p < ALPHA (0.05); "does not separate"
  otherwise; "inconclusive" with fewer than MIN_PAIRS (5) scored pairs, where even a perfect record
  cannot reach p < 0.05 (0.5^4 = 0.0625). The bundled 135M model fails both tests on 30 pairs (17, 16 and 7
  of 30 for the three prompts: separation 0.57 at best, p = 0.29).
Both conditions are needed: with many pairs a weak judge (say 55% wins) passes the sign test alone, and
with few pairs a lucky 4 of 5 passes the separation alone.

With the "reference" prompt the planted good answer is the reference itself, so that check is easier
than with the study's prompts (which never see the reference): a judge failing it is certainly unusable.

Agreement: Spearman rank correlation of per-item G-Eval scores with reference-based metrics (ROUGE-L,
BERTScore) and between prompt/method pairs, over items scored by both.
"""
from __future__ import annotations

import math
import random

MIN_SEPARATION = 0.7
ALPHA = 0.05
MIN_PAIRS = 5
VERDICTS = ("separates", "does not separate", "inconclusive")
CRITERION = (f"a judge separates good from bad answers when the reference answer scores strictly above an answer "
             f"shuffled from another question in at least {MIN_SEPARATION:.0%} of the planted pairs and a one-sided "
             f"sign test (ties dropped) gives p < {ALPHA}; fewer than {MIN_PAIRS} scored pairs is inconclusive")


def planted_rows(items, n: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(good rows, bad rows), pair k from the same question: good answers with its reference, bad with another's.

    `items` are QAItems (id, domain, question, answer). Up to n of them are drawn, seeded, spread over domains;
    the shuffle is a derangement (a random cycle), so no question keeps its own answer, and answers that are
    textually identical to the question's own reference are avoided where another choice exists.
    """
    if n < 2 or len(items) < 2:
        return [], []
    pool = list(items)
    if n < len(pool):
        from data.split import carve_stratified

        pool = carve_stratified(pool, n, seed)[1]
    rng = random.Random(seed)
    order = list(range(len(pool)))
    rng.shuffle(order)
    donor = {order[k]: order[(k + 1) % len(order)] for k in range(len(order))}  # one cycle: nobody keeps their own
    good, bad = [], []
    for i, it in enumerate(pool):
        other = pool[donor[i]]
        if other.answer.strip() == it.answer.strip():  # duplicate answers in the corpus: take any different one
            other = next((o for o in pool if o.answer.strip() != it.answer.strip()), other)
        base = {"question": it.question, "reference": it.answer, "domain": it.domain}
        good.append({**base, "id": it.id, "system": "sanity:reference", "prediction": it.answer})
        bad.append({**base, "id": it.id, "system": "sanity:shuffled", "prediction": other.answer,
                    "answer_from": other.id})
    return good, bad


def sign_test_p(wins: int, losses: int) -> float:
    """One-sided exact binomial p of at least `wins` successes in wins + losses fair coin flips (1.0 when none)."""
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n


def separation_stats(good: list[float | None], bad: list[float | None]) -> dict:
    """Statistics of planted pairs (good[k] and bad[k] belong to one question; None = not scored) and the verdict."""
    if len(good) != len(bad):
        raise ValueError(f"planted pairs need as many good as bad scores (got {len(good)} and {len(bad)})")
    pairs = [(g, b) for g, b in zip(good, bad) if g is not None and b is not None]
    wins = sum(g > b for g, b in pairs)
    losses = sum(g < b for g, b in pairs)
    n = len(pairs)
    separation = wins / n if n else None
    p = sign_test_p(wins, losses)
    if n < MIN_PAIRS:
        verdict = "inconclusive"
    elif separation >= MIN_SEPARATION and p < ALPHA:
        verdict = "separates"
    else:
        verdict = "does not separate"
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    good_mean, bad_mean = mean([g for g, _ in pairs]), mean([b for _, b in pairs])
    return {"n_planted": len(good), "n_pairs": n, "n_unscored": len(good) - n,
            "reference_mean": good_mean, "shuffled_mean": bad_mean,
            "mean_difference": good_mean - bad_mean if n else None,
            "wins": wins, "losses": losses, "ties": n - wins - losses,
            "separation": separation, "sign_test_p": p, "verdict": verdict}


def verdict_warning(context: str, stats: dict, judge: str) -> str | None:
    """The sentence a report puts next to the scores of a judge that failed (or could not take) the check."""
    v = stats["verdict"]
    if v == "separates":
        return None
    if v == "inconclusive":
        return (f"{context}: the sanity check of judge {judge} is inconclusive ({stats['n_pairs']} scored planted "
                f"pairs, {MIN_PAIRS} needed); these G-Eval scores are not shown to measure quality.")
    return (f"{context}: judge {judge} does not separate good from bad answers: it scored the reference answer "
            f"above an answer shuffled from another question in {stats['wins']} of {stats['n_pairs']} planted pairs "
            f"(separation {stats['separation']:.2f}, sign test p = {stats['sign_test_p']:.3f}; reference mean "
            f"{stats['reference_mean']:.2f}, shuffled mean {stats['shuffled_mean']:.2f}). "
            "Its scores are not a quality measure.")


def spearman(x: list[float | None], y: list[float | None]) -> dict:
    """Spearman's rho and its p over positions where both are present; rho None when n < 3 or an input is constant."""
    pairs = [(a, b) for a, b in zip(x, y) if a is not None and b is not None]
    n = len(pairs)
    if n < 3:
        return {"rho": None, "p_value": None, "n": n, "why_none": "fewer than 3 items scored by both"}
    xs, ys = zip(*pairs)
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return {"rho": None, "p_value": None, "n": n, "why_none": "constant scores"}
    from scipy.stats import spearmanr

    res = spearmanr(xs, ys)
    rho, p = float(res.statistic), float(res.pvalue)
    if math.isnan(rho):
        return {"rho": None, "p_value": None, "n": n, "why_none": "undefined"}
    return {"rho": rho, "p_value": p, "n": n}
