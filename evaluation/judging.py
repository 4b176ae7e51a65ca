"""G-Eval inside `python -m evaluation.run`: one judge scores every system's answers, takes the sanity check,
and the "geval" section of metrics.json says what its scores are worth.

For each prompt x method ("context", e.g. "study_v2/probability") the section has, per system, the mean,
n_scored, n_failed, the failures, and the paired-bootstrap difference from the baseline over the items both
had scored; the sanity check (`evaluation.judge_sanity`: planted good and bad answers, separation, sign test,
verdict); agreement (Spearman with ROUGE-L and BERTScore, and between contexts); token and cost accounting;
the judge's identity and settings (never an API key); and under "warning" every reason the scores are not
a quality measure. Per-item scores are merged into the prediction rows (fields geval_<prompt>_<method>).

Judgements go to a JSONL cache (default <out_dir>/geval_cache), so a rerun asks only for what is missing or
failed; a judge that fails or returns garbage costs items, never the run (`evaluation.judge.judge_rows`).
A local judge is loaded on its first judgement, so a rerun whose judgements are all cached loads no model.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from evaluation.judge_sanity import CRITERION, planted_rows, separation_stats, spearman, verdict_warning

log = logging.getLogger(__name__)
LOCAL_SAMPLING = {"temperature": 2.0, "top_p": 1.0, "max_new_tokens": 4, "seed": 0}  # the study's sampling


def context_name(prompt: str, method: str) -> str:
    return f"{prompt}/{method}"


class LazyLocalJudge:
    """A `geval.LocalJudge` whose model is loaded on the first judgement; identity known without loading.

    The identity (the cache key's judge part) is the model spec, quantization, dtype and the resolved
    checkpoint folder, so judgements made with another checkpoint or precision are never reused.
    """

    max_workers = 1
    prices = (0.0, 0.0)

    def __init__(self, model_cfg, samples: int = 10):
        from model.load import pick_device, pick_dtype
        from model.resolve import resolve_model

        self.model_cfg, self.samples = model_cfg, samples
        resolved = resolve_model(model_cfg.name, model_cfg.cache_dir)  # ModelNotFoundError now, not after generation
        dtype = str(pick_dtype(model_cfg, pick_device(model_cfg))).removeprefix("torch.")
        self.name = f"{model_cfg.name} (local, quantization {model_cfg.quantization}, {dtype})"
        self._identity = {"model": self.name, "base_url": f"local:{resolved.path}"}
        self._judge, self._error = None, None

    def cache_identity(self) -> dict:
        return dict(self._identity)

    def method_settings(self, method: str) -> dict:
        return {} if method == "probability" else {"n": self.samples, **LOCAL_SAMPLING}

    def loaded(self):
        if self._judge is None:
            if self._error is not None:  # one failed load fails every item at once, not one load per item
                raise self._error
            from evaluation.geval import LocalJudge
            from model.load import load_model

            try:
                model, tok = load_model(self.model_cfg)
            except Exception as exc:
                self._error = exc
                raise
            model.eval()
            self._judge = LocalJudge(model, tok, name=self.name, samples=self.samples, **LOCAL_SAMPLING)
        return self._judge

    def judge(self, prompt: str, method: str = "probability"):
        return self.loaded().judge(prompt, method)

    def close(self) -> None:
        self._judge = None


def build_judge(cfg, run_cfg: dict | None):
    """(judge, its public settings) for cfg.judge; raises ValueError / ModelNotFoundError before any work is done."""
    if cfg.judge == "openai":
        from evaluation.judge import OpenAIJudge

        jc = cfg.judge_config()
        judge = OpenAIJudge(jc)
        from evaluation.judge import ENV_API_KEY

        key = "<set>" if jc.api_key else (f"<from ${ENV_API_KEY}>" if os.environ.get(ENV_API_KEY) else None)
        return judge, {**jc.public_dict(), "api_key": key, "kind": "openai", "model": judge.model, "base_url": judge.base_url}
    from model.config import ModelConfig

    if cfg.judge_model:
        model_cfg = ModelConfig(name=cfg.judge_model, quantization=cfg.judge_quantization or "none")
    else:
        section = dict(run_cfg["model"]) if run_cfg else {}
        if cfg.judge_quantization:
            section["quantization"] = cfg.judge_quantization
        model_cfg = ModelConfig(**section)
    judge = LazyLocalJudge(model_cfg, cfg.judge_samples)
    return judge, {"kind": "local", "model": model_cfg.name, "quantization": model_cfg.quantization,
                   "dtype": model_cfg.dtype, "device": model_cfg.device, "checkpoint": judge.cache_identity()["base_url"],
                   "prompts": list(cfg.judge_prompts), "methods": list(cfg.judge_methods),
                   "sampling": {"n": cfg.judge_samples, **LOCAL_SAMPLING}}


def _usage(summary: dict) -> dict:
    keys = ("n_items", "n_scored", "n_failed", "n_cached", "n_asked", "requests", "tokens", "cost", "seconds")
    return {k: summary[k] for k in keys}


def _add_usage(total: dict, u: dict) -> None:
    for k in ("n_items", "n_scored", "n_failed", "n_cached", "n_asked", "requests"):
        total[k] = total.get(k, 0) + u[k]
    for group in ("tokens", "cost"):
        for k in ("prompt", "completion", "total"):
            total.setdefault(group, {})[k] = total.get(group, {}).get(k, 0) + u[group][k]
    total["seconds"] = round(total.get("seconds", 0) + u["seconds"], 3)


def score_rows(rows: list[dict], judge, prompts: list[str], methods: list[str], cache, progress: bool) -> tuple[list[dict], dict]:
    """Per-row {score_name: score or None} over every method, and {method: judge_rows summary}."""
    from evaluation.judge import judge_rows

    merged = [{} for _ in rows]
    summaries = {}
    for method in methods:
        scores, summary = judge_rows(rows, judge, prompts, method, progress=progress, cache=cache)
        for m, s in zip(merged, scores):
            m.update({k: v for k, v in s.items() if k.startswith("geval_")})
        summaries[method] = summary
    return merged, summaries


def run_geval(cfg, judge, judge_info: dict, all_rows: dict[str, list[dict]], sanity_items, out_dir: Path,
              progress: bool = True) -> dict:
    """Score every system (per-item scores merged into `all_rows`), run the sanity check; the "geval" section."""
    from evaluation.judge import open_cache, score_name
    from evaluation.significance import paired_bootstrap

    prompts, methods = list(cfg.judge_prompts), list(cfg.judge_methods)
    contexts = [(p, m) for p in prompts for m in methods]
    cache = open_cache(cfg.judge_cache_dir or Path(out_dir) / "geval_cache")
    name = judge.cache_identity()["model"]
    systems = list(all_rows)
    baseline = systems[0]
    usage: dict = {"total": {}}
    failures: dict = {}
    for system, rows in all_rows.items():
        merged, summaries = score_rows(rows, judge, prompts, methods, cache, progress)
        for r, m in zip(rows, merged):
            r.update(m)
        usage[system] = {method: _usage(s) for method, s in summaries.items()}
        for s in summaries.values():
            _add_usage(usage["total"], _usage(s))
        failures[system] = [f for s in summaries.values() for f in s["failures"]]

    geval: dict = {"judge": name, "judge_config": judge_info, "baseline": baseline, "prompts": prompts,
                   "methods": methods, "cache": str(cache.path)}
    for p, m in contexts:
        key, ctx = score_name(p, m), context_name(p, m)
        base_scores = [r.get(key) for r in all_rows[baseline]]
        entry: dict = {"judge": name, "prompt": p, "method": m}
        for system, rows in all_rows.items():
            vals = [r.get(key) for r in rows]
            got = [v for v in vals if v is not None]
            fails = [{k: f[k] for k in ("id", "error", "message", "attempts")} | {"message": f["message"][:300]}
                     for f in failures[system] if f["prompt"] == p and f["method"] == m]
            res = {"mean": sum(got) / len(got) if got else None, "n_scored": len(got), "n_failed": len(vals) - len(got),
                   "failures": fails}
            if system != baseline:
                both = [(a, b) for a, b in zip(base_scores, vals) if a is not None and b is not None]
                res["vs_baseline"] = (paired_bootstrap([a for a, _ in both], [b for _, b in both]) if len(both) >= 2
                                      else {"n": len(both), "why_none": "fewer than 2 items scored for both systems"})
            entry[system] = res
        geval[ctx] = entry

    warnings: list[str] = []
    sanity = run_sanity(cfg, judge, sanity_items, prompts, methods, cache, out_dir, progress)
    if sanity is None:
        warnings.append(f"The judge sanity check was off (judge_sanity 0) or had fewer than 2 eval items: nothing shows "
                        f"that judge {name} separates good from bad answers, so these G-Eval scores are not validated "
                        "as a quality measure.")
    else:
        for method, s in sanity.pop("usage").items():
            usage["sanity"] = {**usage.get("sanity", {}), method: _usage(s)}
            _add_usage(usage["total"], _usage(s))
        geval["sanity"] = sanity
        for p, m in contexts:
            ctx = context_name(p, m)
            geval[ctx]["verdict"] = sanity[ctx]["verdict"]
            w = verdict_warning(ctx, sanity[ctx], name)
            if w:
                warnings.append(w)
    n_failed, n_items = usage["total"].get("n_failed", 0), usage["total"].get("n_items", 0)
    if n_failed:
        warnings.append(f"{n_failed} of {n_items} judgements failed (per item under each system's failures); "
                        "the means leave them out. Rerun the same command to ask only for those.")
    geval["agreement"] = agreement(all_rows, contexts)
    geval["usage"] = usage
    if warnings:
        geval["warning"] = warnings
    return geval


def run_sanity(cfg, judge, items, prompts, methods, cache, out_dir: Path, progress: bool) -> dict | None:
    """Planted pairs scored with every prompt x method: {"n_planted", "criterion", ctx: stats, "usage"}; None when off."""
    from evaluation.judge import score_name

    good, bad = planted_rows(items, cfg.judge_sanity, seed=cfg.sample_seed) if cfg.judge_sanity else ([], [])
    if not good:
        return None
    planted = good + bad
    merged, summaries = score_rows(planted, judge, prompts, methods, cache, progress)
    n = len(good)
    out: dict = {"n_planted": n, "seed": cfg.sample_seed, "criterion": CRITERION,
                 "rows": str(Path(out_dir) / "geval_sanity.jsonl"), "usage": summaries}
    for p in prompts:
        for m in methods:
            key = score_name(p, m)
            out[context_name(p, m)] = separation_stats([s.get(key) for s in merged[:n]], [s.get(key) for s in merged[n:]])
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(out_dir) / "geval_sanity.jsonl", "w", encoding="utf-8") as fh:
        for row, scores in zip(planted, merged):
            fh.write(json.dumps({**row, **scores}, ensure_ascii=False, sort_keys=True) + "\n")
    return out


def agreement(all_rows: dict[str, list[dict]], contexts: list[tuple[str, str]]) -> dict:
    """Spearman of per-item G-Eval with ROUGE-L and BERTScore, and between contexts; rows of all systems pooled."""
    from evaluation.judge import score_name
    from evaluation.metrics import bertscore_items, rouge_item

    rows = [r for rs in all_rows.values() for r in rs]
    rouge_l = [rouge_item(r)["rougeL"] for r in rows]
    bert = [b for rs in all_rows.values() for b in bertscore_items(rs)]  # per system: the memo of the metrics pass
    with_metrics, between = {}, {}
    for p, m in contexts:
        g = [r.get(score_name(p, m)) for r in rows]
        with_metrics[context_name(p, m)] = {"rougeL": spearman(g, rouge_l), "bertscore_f1": spearman(g, bert)}
    for i, (p1, m1) in enumerate(contexts):
        for p2, m2 in contexts[i + 1:]:
            between[f"{context_name(p1, m1)} ~ {context_name(p2, m2)}"] = spearman(
                [r.get(score_name(p1, m1)) for r in rows], [r.get(score_name(p2, m2)) for r in rows])
    return {"method": "Spearman rank correlation over the items (all systems pooled) scored by both",
            "with_reference_metrics": with_metrics, "between_contexts": between}
