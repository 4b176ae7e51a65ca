"""Our ROUGE and BLEU against independent implementations, on fixed predictions (issue 6).

ROUGE: evaluation.metrics (Google's rouge-score, F1, Porter stemming) against torchmetrics' own
implementation (`torchmetrics.functional.text.rouge`, written separately; it shares only nltk's Porter
stemmer, which both use in its default mode, and the ROUGE-1.5.5 normalisation: lowercase, every
non-alphanumeric character a separator, only words longer than 3 characters stemmed). Per item and
averaged they agree to 1e-6 (torchmetrics returns float32 tensors).

BLEU: evaluation.metrics (nltk) against sacrebleu, where the two compute the same quantity:
- same tokens: our lowercased regex tokens joined by spaces, given to sacrebleu with tokenize="none".
  sacrebleu's default (13a tokenizer, case-sensitive) would split some punctuation differently and not
  lowercase, so its numbers are not ours and are not compared;
- same smoothing: nltk's method 1 (epsilon 0.1 added to zero match counts) is sacrebleu's "floor" with
  value 0.1; with matches at every order, smoothing does nothing and sacrebleu without smoothing agrees too;
- corpus BLEU (our "BLEU"): sacrebleu's corpus score / 100, agreement to 1e-9;
- BLEU-n (ours: sentence BLEU with all weight on order n, averaged) is no sacrebleu score; it equals
  brevity penalty x modified n-gram precision, which sacrebleu reports per sentence (bp, precisions), so
  we compare with those, and BLEU-1 with sacrebleu's sentence BLEU at max order 1;
- where they differ: a hypothesis shorter than n has no n-grams; nltk smooths that 0/0 to 0.1/1, while
  sacrebleu leaves the precision at 0. The fixtures keep hypotheses of at least 4 tokens, and the last
  test pins the difference down so a change in either library shows up.
"""
import pytest

from evaluation.metrics import bleu_item, compute_metrics, rouge_item, tokenize

ROWS = [
    {"reference": "A hash table maps keys to values. It uses a hash function to pick a bucket, so lookups take "
                  "constant "
                  "time on average.",
     "prediction": "A hash table stores values under keys; a hash function picks the bucket, and lookups take constant "
                   "time on average, though collisions can slow them down."},
    {"reference": "Quicksort partitions the array around a pivot and recursively sorts both parts. With random pivots "
                  "the expected running time is O(n log n).",
     "prediction": "Quicksort picks a pivot, partitions the array around the pivot, and sorts both parts recursively; "
                   "the expected running time is O(n log n) with random pivots."},
    {"reference": "The variance is the expected squared deviation of a random variable from its mean. It measures how "
                  "spread out the values are.",
     "prediction": "Variance measures how spread out the values are: it is the expected squared deviation from the "
                   "mean."},
    {"reference": "Dropout randomly zeroes activations during training. It is a kind of regularization that helps to "
                  "prevent overfitting, and it is switched off at inference.",
     "prediction": "During training, dropout randomly sets activations to zero, which is a kind of regularization that "
                   "helps to prevent overfitting."},
    {"reference": "Gradient descent updates the parameters in the direction opposite to the gradient of the loss "
                  "function, scaled by a learning rate.",
     "prediction": "Gradient descent moves the parameters against the gradient of the loss function, scaled by the "
                   "learning rate, until the loss stops improving."},
    {"reference": "A p-value is the probability of observing data at least as extreme as the data observed, assuming "
                  "the null hypothesis is true.",
     "prediction": "The p-value is the probability, assuming the null hypothesis is true, of data at least as extreme "
                   "as what was observed. It is not the probability that the null hypothesis is true."},
]


def joined(text: str) -> str:
    return " ".join(tokenize(text))


# ---- ROUGE against torchmetrics ---------------------------------------------------------------------


def torchmetrics_rouge(preds: list[str], refs: list[str]) -> dict[str, float]:
    rouge_score = pytest.importorskip("torchmetrics.functional.text.rouge").rouge_score
    out = rouge_score(preds, refs, use_stemmer=True, rouge_keys=("rouge1", "rouge2", "rougeL"))
    return {k: float(out[f"{k}_fmeasure"]) for k in ("rouge1", "rouge2", "rougeL")}


def test_rouge_per_item_matches_torchmetrics():
    for row in ROWS:
        ours = rouge_item(row)
        theirs = torchmetrics_rouge([row["prediction"]], [row["reference"]])
        assert ours == pytest.approx(theirs, abs=1e-6), row["reference"][:40]
        assert 0 < ours["rouge2"] < ours["rouge1"] < 1  # the fixture exercises partial overlap, not only 0 and 1


def test_rouge_averages_match_torchmetrics():
    ours = compute_metrics(ROWS, ["rouge"])["rouge"]
    theirs = torchmetrics_rouge([r["prediction"] for r in ROWS], [r["reference"] for r in ROWS])
    assert ours == pytest.approx(theirs, abs=1e-6)


def test_stemming_matters_and_both_stem_alike():
    row = {"reference": "the models were training and converging", "prediction": "the model trains and converges"}
    ours = rouge_item(row)["rouge1"]
    assert ours == pytest.approx(torchmetrics_rouge([row["prediction"]], [row["reference"]])["rouge1"], abs=1e-6)
    unstemmed = pytest.importorskip("torchmetrics.functional.text.rouge").rouge_score(
        row["prediction"], row["reference"], use_stemmer=False, rouge_keys="rouge1")["rouge1_fmeasure"]
    assert ours > float(unstemmed) + 0.2


# ---- BLEU against sacrebleu -------------------------------------------------------------------------


def sacre(**kw):
    metrics = pytest.importorskip("sacrebleu.metrics")
    return metrics.BLEU(tokenize="none", **kw)


def test_corpus_bleu_matches_sacrebleu():
    ours = compute_metrics(ROWS, ["bleu"])["bleu"]["bleu"]
    hyps, refs = [joined(r["prediction"]) for r in ROWS], [[joined(r["reference"]) for r in ROWS]]
    floor = sacre(smooth_method="floor", smooth_value=0.1).corpus_score(hyps, refs)
    assert all(c > 0 for c in floor.counts)  # matches at every order, so smoothing is inactive ...
    assert ours == pytest.approx(floor.score / 100, abs=1e-9)
    plain = sacre(smooth_method="none").corpus_score(hyps, refs)
    assert ours == pytest.approx(plain.score / 100, abs=1e-9)  # ... and sacrebleu without smoothing agrees


def test_corpus_bleu_smoothing_agrees_when_no_4gram_matches():
    rows = [{"reference": "alpha beta gamma delta epsilon zeta", "prediction": "alpha beta gamma omega delta epsilon"},
            {"reference": "one two three four five six", "prediction": "one two three seven five six"}]
    ours = compute_metrics(rows, ["bleu"])["bleu"]["bleu"]
    hyps, refs = [joined(r["prediction"]) for r in rows], [[joined(r["reference"]) for r in rows]]
    floor = sacre(smooth_method="floor", smooth_value=0.1).corpus_score(hyps, refs)
    assert floor.counts[3] == 0 and ours > 0
    assert ours == pytest.approx(floor.score / 100, abs=1e-9)  # nltk method 1 == sacrebleu floor 0.1
    assert sacre(smooth_method="none").corpus_score(hyps, refs).score == 0.0  # unsmoothed BLEU is 0 here


def test_sentence_bleu_n_matches_sacrebleu_statistics():
    floor = sacre(smooth_method="floor", smooth_value=0.1)
    order1 = sacre(smooth_method="floor", smooth_value=0.1, max_ngram_order=1, effective_order=True)
    for row in ROWS:
        h, r = joined(row["prediction"]), joined(row["reference"])
        assert len(h.split()) >= 4
        ours = bleu_item(row)
        stats = floor.sentence_score(h, [r])
        for n in range(1, 5):
            assert ours[f"bleu{n}"] == pytest.approx(stats.bp * stats.precisions[n - 1] / 100, abs=1e-9), (n, h[:40])
        assert ours["bleu1"] == pytest.approx(order1.sentence_score(h, [r]).score / 100, abs=1e-9)


def test_known_difference_hypothesis_shorter_than_n():
    row = {"reference": "the cat sat on the mat", "prediction": "the cat"}  # two tokens: no 3- or 4-grams
    ours = bleu_item(row)
    stats = sacre(smooth_method="floor", smooth_value=0.1).sentence_score(joined(row["prediction"]),
                                                                          [joined(row["reference"])])
    assert stats.totals[2] == 0 and stats.precisions[2] == 0.0  # sacrebleu: no trigrams, precision 0
    assert ours["bleu3"] == pytest.approx(stats.bp * 0.1)  # nltk: 0/0 smoothed to 0.1/1
    assert ours["bleu1"] == pytest.approx(stats.bp * stats.precisions[0] / 100)  # orders that exist still agree
