"""Draw a seeded review sample of corpus answers or curated relations, and summarise a review record.

    .venv/bin/python scripts/review_sample.py draw corpus --n 300 --seed 14
    .venv/bin/python scripts/review_sample.py draw relations --n 300 --seed 14 \
        --exclude kg/review/relation_review_2.jsonl
    .venv/bin/python scripts/review_sample.py rates data/review/corpus_review_2.jsonl

The sample is stratified by shard (corpus file, or the vocabulary file that defines the relation's head),
in proportion to shard size, and within a shard drawn with random.Random(f"{seed}:{shard}"), so the same
seed and the same data give the same items on any machine. `--exclude` leaves out items already reviewed
in earlier records, so a later pass reads new ones. `rates` prints JSON: counts per verdict, the share
judged correct with a Wilson 95% interval, and the same per shard.
"""
from __future__ import annotations

import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VERDICTS = ("correct", "minor", "wrong")


def item_key(row: dict) -> str:
    return row["id"] if "id" in row else f"{row['head']} {row['relation']} {row['tail']}"


def population(kind: str) -> dict[str, list[str]]:
    """shard -> item keys (QA ids, or 'head RELATION tail')."""
    out: dict[str, list[str]] = defaultdict(list)
    if kind == "corpus":
        from data.config import SHIPPED_CORPUS_DIR

        for path in sorted(SHIPPED_CORPUS_DIR.glob("*.jsonl")):
            out[path.name] = [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines() if line]
        return out
    from kg.vocabulary import VOCAB_DIR, load_vocabulary

    shard_of: dict[str, str] = {}
    for path in sorted(VOCAB_DIR.glob("concepts_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                shard_of.setdefault(json.loads(line)["id"], path.name)
    for t in load_vocabulary().curated:
        out[shard_of[t.head]].append(" ".join(t.key))
    return out


def draw(pop: dict[str, list[str]], n: int, seed: int, exclude: set[str] = frozenset()) -> list[tuple[str, str]]:
    """(shard, key) pairs: n items spread over shards in proportion to their size (largest remainders)."""
    pools = {s: sorted(k for k in keys if k not in exclude) for s, keys in pop.items()}
    total = sum(len(p) for p in pools.values())
    if n > total:
        raise ValueError(f"asked for {n} items but only {total} are left to review")
    raw = {s: n * len(p) / total for s, p in pools.items()}
    share = {s: int(r) for s, r in raw.items()}
    for s in sorted(raw, key=lambda s: (-(raw[s] - share[s]), s))[: n - sum(share.values())]:
        share[s] += 1
    sample = []
    for s in sorted(pools):
        rng = random.Random(f"{seed}:{s}")
        sample += [(s, k) for k in sorted(rng.sample(pools[s], share[s]))]
    return sample


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    from evaluation.significance import wilson_interval

    return [round(v, 4) for v in wilson_interval(k, n, z)]


def rates(rows: list[dict]) -> dict:
    def summary(part: list[dict]) -> dict:
        counts = Counter(r["verdict"] for r in part)
        k, n = counts["correct"], len(part)
        return {"items": n, **{v: counts[v] for v in VERDICTS}, "correct_share": round(k / n, 4) if n else None,
                "correct_share_95ci": wilson(k, n)}

    bad = sorted({r["verdict"] for r in rows} - set(VERDICTS))
    if bad:
        raise ValueError(f"unknown verdicts {bad}; expected one of {VERDICTS}")
    by_shard = defaultdict(list)
    for r in rows:
        by_shard[r.get("shard", "?")].append(r)
    return {**summary(rows), "by_shard": {s: summary(p) for s, p in sorted(by_shard.items())}}


def read_rows(paths: list[str]) -> list[dict]:
    rows = []
    for p in paths:
        for lineno, line in enumerate(Path(p).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p}:{lineno}: broken JSON ({exc.msg})") from None
    return rows


def main(argv: list[str] | None = None) -> int:
    from data.cli import ArgumentParser

    parser = ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("draw", help="print a seeded sample as JSON lines (shard, key)")
    d.add_argument("kind", choices=["corpus", "relations"])
    d.add_argument("--n", type=int, default=300)
    d.add_argument("--seed", type=int, default=14)
    d.add_argument("--exclude", nargs="*", default=[], help="earlier review records whose items to skip")
    r = sub.add_parser("rates", help="summarise one or more review records")
    r.add_argument("records", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "draw":
            done = {item_key(row) for row in read_rows(args.exclude)}
            for shard, key in draw(population(args.kind), args.n, args.seed, done):
                print(json.dumps({"shard": shard, "key": key}))
        else:
            print(json.dumps(rates(read_rows(args.records)), indent=2))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
