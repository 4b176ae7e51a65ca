from pathlib import Path

import pytest

from evaluation.metrics import compute_metrics, degeneration_item, repeated_ngram_fraction, tokenize
from evaluation.report import markdown_table

ROWS = [
    {"reference": "A hash table maps keys to values using a hash function.",
     "prediction": "A hash table maps keys to values with a hash function."},
    {"reference": "Variance is the expected squared deviation from the mean.",
     "prediction": "The variance measures spread around the mean."},
]


def test_rouge_identical_and_disjoint():
    same = compute_metrics([{"reference": "a b c d", "prediction": "a b c d"}], ["rouge"])["rouge"]
    assert same == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    none = compute_metrics([{"reference": "a b c d", "prediction": "x y z"}], ["rouge"])["rouge"]
    assert none["rouge1"] == 0.0


def test_bleu_orders_and_corpus_score():
    m = compute_metrics(ROWS, ["bleu"])["bleu"]
    assert 0 < m["bleu4"] <= m["bleu1"] <= 1 and 0 < m["bleu"] <= 1
    perfect = compute_metrics([{"reference": "the cat sat on the mat today",
                                "prediction": "the cat sat on the mat today"}], ["bleu"])["bleu"]
    assert perfect["bleu1"] == pytest.approx(1.0) and perfect["bleu"] == pytest.approx(1.0)


def test_rouge_matches_a_hand_computation():
    # reference 4 tokens, prediction 3 tokens, 2 unigram overlaps -> P=2/3, R=2/4, F1=4/7
    m = compute_metrics([{"reference": "alpha beta gamma delta", "prediction": "alpha beta omega"}], ["rouge"])["rouge"]
    assert m["rouge1"] == pytest.approx(4 / 7)
    assert m["rouge2"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))


def test_degeneration_flags_the_studys_failure():
    row = {"reference": "x", "prediction": "Hash tables store data.",
           "raw_prediction": "Hash tables store data.\n\n### Question:\nWhat is AI?", "stop_reason": "stop_string"}
    d = degeneration_item(row)
    assert d["follow_up"] == 1.0 and d["hit_limit"] == 0.0
    assert degeneration_item({"reference": "x", "prediction": "fine.", "stop_reason": "eos"})["follow_up"] == 0.0
    assert repeated_ngram_fraction("a b c d a b c d") == pytest.approx(1 - 4 / 5)
    assert tokenize("Don't stop!") == ["don", "'", "t", "stop", "!"]


def test_table_has_the_study_columns():
    m = {"plain": compute_metrics([dict(r, stop_reason="eos") for r in ROWS])}
    t = markdown_table(m, 2)
    assert "| system | ROUGE-1 | ROUGE-2 | ROUGE-L | BLEU-1 | BLEU-2 | BLEU-3 | BLEU-4 | BLEU |" in t
    assert "| plain |" in t


def test_meteor_exact_match_and_the_wordnet_note():
    from evaluation import metrics

    same = compute_metrics([{"reference": "a hash table maps keys", "prediction": "a hash table maps keys"}],
                           ["meteor"])["meteor"]["meteor"]
    # one chunk of 5 matches: Fmean 1, fragmentation penalty 0.5 * (1/5)^3 = 0.004
    assert same == pytest.approx(0.996, abs=1e-3)
    other = compute_metrics([{"reference": "a hash table maps keys", "prediction": "variance measures spread"}],
                            ["meteor"])["meteor"]["meteor"]
    assert other == 0.0
    if isinstance(metrics._wordnet(), metrics._NoWordNet):
        assert any("WordNet" in n for n in metrics.NOTES) and "no WordNet" in metrics.metric_versions()["meteor"]


def test_bertscore_on_the_bundled_minilm():
    from evaluation.metrics import bertscore_items, metric_versions

    rows = [
        {"reference": "A hash table maps keys to values.", "prediction": "A hash table maps keys to values."},
        {"reference": "A hash table maps keys to values.", "prediction": "A hash map stores key-value pairs."},
        {"reference": "A hash table maps keys to values.", "prediction": "The weather is sunny in Spain."},
        {"reference": "A hash table maps keys to values.", "prediction": ""},
    ]
    same, close, far, empty = bertscore_items(rows)
    assert same == pytest.approx(1.0, abs=1e-3) and same > close > far and empty == 0.0
    assert "all_minilm" in metric_versions(["bertscore"])["bertscore"].lower().replace("-", "_")


@pytest.mark.skipif(not Path("/usr/share/wordnet/index.sense").exists(),
                    reason="Debian's wordnet-base / wordnet-sense-index are not installed "
                           "(scripts/setup.sh installs them)")
def test_meteor_matches_wordnet_synonyms(tmp_path, monkeypatch):
    import nltk

    from evaluation import metrics, wordnet

    monkeypatch.setenv("STUDYLLAMA_CACHE", str(tmp_path))
    target = wordnet.install()
    assert len((target / "lexnames").read_text().splitlines()) == 45
    monkeypatch.setattr(nltk.data, "path", list(nltk.data.path))
    monkeypatch.setattr(metrics, "_WORDNET", None)
    row = {"reference": "the car is quick", "prediction": "the automobile is fast"}
    assert metrics.meteor_version().endswith("/wordnet")
    with_synonyms = metrics.meteor_item(row)["meteor"]
    assert abs(with_synonyms - 0.6389) < 1e-3  # "automobile" = "car" and "fast" = "quick" through WordNet
    monkeypatch.setattr(metrics, "_WORDNET", metrics._NoWordNet())
    assert metrics.meteor_item(row)["meteor"] < 0.3  # exact words and stems only: "the", "is"


def test_metric_versions_name_the_installed_packages(monkeypatch):
    from importlib import metadata

    from evaluation import metrics

    versions = metrics.metric_versions(["rouge", "bleu", "meteor", "degeneration"])
    assert versions["rouge"] == f"rouge-score-{metadata.version('rouge-score')}/f1/stem"
    assert versions["bleu"] == f"nltk-{metadata.version('nltk')}/method1/regex-tokens"
    assert versions["meteor"].startswith(f"nltk-{metadata.version('nltk')}/meteor/")
    assert versions["degeneration"] == "1"
    # an upgrade shows: the version is read when asked, not written down when the module was
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda pkg: "9.9.9" if pkg == "rouge-score" else real(pkg))
    assert metrics.metric_versions(["rouge"])["rouge"] == "rouge-score-9.9.9/f1/stem"
