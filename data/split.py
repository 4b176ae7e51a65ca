"""Deterministic stratified splits: curated train (minus a dev slice) and eval (everything else)."""
from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

from data.curate import select_training_items
from data.schema import QAItem


@dataclass
class Splits:
    train: list[QAItem]  # items the optimiser sees
    dev: list[QAItem]  # carved from the curated training selection, for checkpoint selection
    eval: list[QAItem]  # held out: never trained on, never used for selection

    def sizes(self) -> dict[str, int]:
        return {"train_curated": len(self.train) + len(self.dev), "train": len(self.train), "dev": len(self.dev),
                "eval": len(self.eval)}


def stable_rank(item_id: str, seed: int) -> str:
    """A seed-dependent, platform-independent ordering key (no Python hash randomisation)."""
    return hashlib.sha256(f"{seed}:{item_id}".encode()).hexdigest()


def carve_stratified(items: list[QAItem], n: int, seed: int) -> tuple[list[QAItem], list[QAItem]]:
    """Take n items spread over domains in proportion; returns (rest, taken), both sorted by id."""
    by_domain: dict[str, list[QAItem]] = defaultdict(list)
    for it in items:
        by_domain[it.domain].append(it)
    raw = {d: n * len(v) / len(items) for d, v in by_domain.items()}
    share = {d: int(r) for d, r in raw.items()}
    for d in sorted(raw, key=lambda d: (-(raw[d] - share[d]), d))[: n - sum(share.values())]:
        share[d] += 1
    taken_ids = set()
    for d, pool in by_domain.items():
        taken_ids.update(it.id for it in sorted(pool, key=lambda it: stable_rank(it.id, seed))[: share[d]])
    rest = [it for it in items if it.id not in taken_ids]
    taken = [it for it in items if it.id in taken_ids]
    return sorted(rest, key=lambda it: it.id), sorted(taken, key=lambda it: it.id)


def make_splits(
    items: list[QAItem],
    train_size: int,
    dev_size: int,
    eval_size: int | None = None,
    seed: int = 13,
    embeddings=None,
) -> Splits:
    curated = select_training_items(items, train_size, embeddings)
    chosen = {it.id for it in curated}
    held_out = sorted((it for it in items if it.id not in chosen), key=lambda it: it.id)
    if eval_size is not None and eval_size < len(held_out):
        _, held_out = carve_stratified(held_out, eval_size, seed)
    train, dev = carve_stratified(curated, dev_size, seed) if dev_size else (curated, [])
    return Splits(train=train, dev=dev, eval=held_out)
