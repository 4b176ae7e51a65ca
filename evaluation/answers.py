"""Every system's answers to the eval items, resumable: each system's cache (predictions/<system>.jsonl) is
read first, the trained files of every system with something left to answer are checked (so a missing or
truncated adapter stops the evaluation before any answer is generated), then the rest is generated batch by
batch, each batch appended to the cache as it finishes."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from evaluation.predictions import append_rows, read_cached, rewrite_clean
from evaluation.systems import SystemRunner, check_trained

log = logging.getLogger(__name__)


@dataclass
class SystemPlan:
    system: str
    run: object | None  # the RunDir that provides it (None: the bundled base model, plain only)
    cache_path: Path
    cached: dict[str, dict] = field(default_factory=dict)
    todo: list = field(default_factory=list)


def plan(systems: list[str], items, runs: dict, default_run, out_dir: Path) -> list[SystemPlan]:
    """What each system has cached and still has to answer; every system that must answer is checked now."""
    plans = []
    for system in systems:
        cache_path = out_dir / "predictions" / f"{system}.jsonl"
        cached = read_cached(cache_path)
        todo = [it for it in items if it.id not in cached]
        log.info("%s: %d cached, %d to generate", system, len(items) - len(todo), len(todo))
        plans.append(SystemPlan(system, runs.get(system, default_run), cache_path, cached, todo))
    for p in plans:
        if p.todo:
            check_trained(p.system, p.run)
    return plans


def generate(plans: list[SystemPlan], items, style: str, settings, stops: list[str], progress: bool = True):
    """{system: rows in item order}: the cached rows plus every answer generated now (appended as it comes)."""
    all_rows: dict[str, list[dict]] = {}
    for p in plans:
        if p.todo:
            runner = SystemRunner(p.system, p.run, style, settings, stops).load()
            batches = range(0, len(p.todo), settings.batch_size)
            if progress:
                from tqdm.auto import tqdm

                batches = tqdm(batches, desc=f"answers ({p.system})", unit="batch")
            for start in batches:
                chunk = p.todo[start : start + settings.batch_size]
                rows = [
                    {
                        "id": it.id, "system": p.system, "domain": it.domain, "question": it.question,
                        "reference": it.answer, "prediction": g.text, "raw_prediction": g.raw_text,
                        "stop_reason": g.stop_reason, "new_tokens": g.new_tokens, **extra,
                    }
                    for it, (g, extra) in zip(chunk, runner.answer(chunk))
                ]
                append_rows(p.cache_path, rows)
                p.cached.update({r["id"]: r for r in rows})
            runner.close()
            from model.memory import release_memory

            release_memory()  # the next system's model starts from a heap without this one's pages
        if p.cache_path.exists():
            rewrite_clean(p.cache_path, list(p.cached.values()))  # drops any half-written line a kill left behind
        all_rows[p.system] = [p.cached[it.id] for it in items]
    return all_rows
