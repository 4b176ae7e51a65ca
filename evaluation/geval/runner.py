"""G-Eval over prediction rows: `judge_rows` (one judge, one method, every prompt; cached; failures recorded,
never raised) and `run_geval`, the "geval" section of an evaluation's metrics.json.

For each prompt x method ("context", e.g. "study_v2/probability") the section has, per system, the mean,
n_scored, n_failed, the failures, and the paired-bootstrap difference from the baseline over the items both
had scored; the sanity check (evaluation.geval.sanity: planted good and bad answers, separation, sign test,
verdict); agreement (Spearman with ROUGE-L and BERTScore, and between contexts); token and cost accounting;
the judge's identity and settings (never an API key); and under "warning" every reason the scores are not
a quality measure. Per-item scores are merged into the prediction rows (fields geval_<prompt>_<method>).
A local judge is loaded on its first judgement, so a rerun whose judgements are all cached loads no model.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from evaluation.geval.cache import JudgeCache, cache_key, open_cache
from evaluation.geval.judges import JudgeError
from evaluation.geval.prompts import METHODS, PROMPTS, Judgement, render
from evaluation.geval.sanity import CRITERION, planted_rows, separation_stats, spearman, verdict_warning

log = logging.getLogger(__name__)


def context_name(prompt: str, method: str) -> str:
    return f"{prompt}/{method}"


def score_name(prompt_name: str, method: str) -> str:
    """The per-item field a score lands in, e.g. "geval_study_v2_probability"."""
    return f"geval_{prompt_name}_{method}"


def judge_rows(rows: list[dict], judge, prompt_names=("study_v2",), method: str = "probability", progress: bool = False,
               cache: JudgeCache | None = None, workers: int | None = None,
               answer_key: str = "prediction") -> tuple[list[dict], dict]:
    """Score every row with every prompt by one method; failures are recorded, never raised.

    rows: dicts with "id", "question", the answer under `answer_key` ("prediction"), "reference" (needed by
    the reference prompt) and optionally "system". judge: an `OpenAIJudge`, a `geval.LocalJudge`, or
    anything with `judge(prompt, method) -> Judgement`, `cache_identity()` and `method_settings(method)`.
    Cached judgements are reused; identical prompts are asked once. `workers` defaults to the judge's
    `max_workers` (1 for a local model).

    Returns (scores, summary). scores[i] belongs to rows[i]: {"id", "system", score_name(prompt, method):
    float or None}. summary: judge, base_url, method, prompts, settings, n_items (row x prompt pairs),
    n_scored, n_failed, n_cached, n_asked (distinct prompts sent), requests (HTTP attempts, where the
    judge counts them), failures [{id, system, prompt, method, error, message, attempts}], tokens
    {prompt, completion, total} and cost {prompt, completion, total} of this call's replies, mean
    per score name, seconds.
    """
    if method not in METHODS:
        raise ValueError(f"unknown G-Eval method {method!r}; use one of {METHODS}")
    prompt_names = list(prompt_names)
    for p in prompt_names:
        if p not in PROMPTS:
            raise ValueError(f"unknown G-Eval prompt {p!r}; known: {', '.join(PROMPTS)}")
    started = time.monotonic()
    identity, settings = judge.cache_identity(), judge.method_settings(method)
    requests_before = getattr(judge, "requests", 0)

    tasks: list[tuple[int, str, str]] = []  # (row index, prompt name, cache key)
    texts: dict[str, str] = {}
    for i, row in enumerate(rows):
        needed = ["id", "question", answer_key] + (["reference"] if "reference" in prompt_names else [])
        missing = [k for k in needed if row.get(k) is None]
        if missing:
            raise ValueError(f"row {row.get('id', i)!r} lacks {missing}")
        for p in prompt_names:
            text = render(p, row["question"], row[answer_key], row.get("reference") or "")
            key = cache_key(identity, p, method, settings, text)
            texts[key] = text
            tasks.append((i, p, key))

    scored: dict[str, float] = {}
    for key in texts:
        rec = cache.get(key) if cache is not None else None
        if rec is not None and rec.get("score") is not None:
            scored[key] = rec["score"]
    n_cached = sum(1 for _, _, k in tasks if k in scored)
    todo = [k for k in texts if k not in scored]
    prompt_of = {k: p for _, p, k in tasks}
    errors: dict[str, JudgeError] = {}
    tokens = {"prompt_tokens": 0, "completion_tokens": 0}
    log.info("G-Eval (%s, %s, %s): %d cached, %d to ask",
             identity["model"], method, ",".join(prompt_names), len(texts) - len(todo), len(todo))

    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"G-Eval {method}", unit="item")
    pool = ThreadPoolExecutor(max_workers=max(1, workers or getattr(judge, "max_workers", 1)))
    try:
        pending = {pool.submit(judge.judge, texts[k], method): k for k in todo}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                key = pending.pop(fut)
                try:
                    j = fut.result()
                except JudgeError as exc:
                    errors[key] = exc
                    _add_tokens(tokens, exc.usage)
                except Exception as exc:  # a local judge's crash is one item's failure, not the run's
                    log.warning("judge raised %s on one item", type(exc).__name__, exc_info=True)
                    errors[key] = JudgeError(type(exc).__name__, str(exc))
                else:
                    _add_tokens(tokens, j.detail.get("usage") or {})
                    if j.score is None:
                        errors[key] = JudgeError("no_score", f"no score in the reply: {_reply_excerpt(j)}")
                    else:
                        scored[key] = j.score
                        if cache is not None:
                            cache.put(key, {**identity, "prompt": prompt_of[key], "method": method,
                                            "settings": settings,
                                            "text_sha256": hashlib.sha256(texts[key].encode()).hexdigest(),
                                            "score": j.score, "detail": j.detail, "time": time.time()})
                if bar is not None:
                    bar.update(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()

    scores = [{"id": row["id"], "system": row.get("system")} for row in rows]
    failures = []
    for i, p, key in tasks:
        scores[i][score_name(p, method)] = scored.get(key)
        if key in errors:
            e = errors[key]
            failures.append({"id": rows[i]["id"], "system": rows[i].get("system"), "prompt": p, "method": method,
                             "error": e.kind, "message": e.message, "attempts": e.attempts})
    means = {}
    for p in prompt_names:
        vals = [s[score_name(p, method)] for s in scores if s[score_name(p, method)] is not None]
        means[score_name(p, method)] = sum(vals) / len(vals) if vals else None
    price_in, price_out = getattr(judge, "prices", (0.0, 0.0))
    cost_in, cost_out = tokens["prompt_tokens"] / 1000 * price_in, tokens["completion_tokens"] / 1000 * price_out
    summary = {
        "judge": identity["model"], "base_url": identity["base_url"], "method": method, "prompts": prompt_names,
        "settings": settings, "n_items": len(tasks), "n_scored": len(tasks) - len(failures), "n_failed": len(failures),
        "n_cached": n_cached, "n_asked": len(todo), "requests": getattr(judge, "requests", 0) - requests_before,
        "failures": failures,
        "tokens": {"prompt": tokens["prompt_tokens"], "completion": tokens["completion_tokens"],
                   "total": tokens["prompt_tokens"] + tokens["completion_tokens"]},
        "cost": {"prompt": cost_in, "completion": cost_out, "total": cost_in + cost_out,
                 "price_prompt_per_1k": price_in, "price_completion_per_1k": price_out},
        "mean": means, "seconds": round(time.monotonic() - started, 3),
    }
    if failures:
        log.warning("G-Eval (%s): %d of %d judgements failed; rerun to retry only those", method, len(failures),
                    len(tasks))
    return scores, summary


def _add_tokens(total: dict, usage: dict) -> None:
    total["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
    total["completion_tokens"] += int(usage.get("completion_tokens") or 0)


def _reply_excerpt(j: Judgement) -> str:
    d = j.detail
    if "samples" in d:
        return repr(d["samples"][:3])[:200]
    return f"text {d.get('text', '')!r}, top tokens {list(d.get('logprobs', {}))[:5]}"[:200]


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


def score_rows(rows: list[dict], judge, prompts: list[str], methods: list[str], cache,
               progress: bool) -> tuple[list[dict], dict]:
    """Per-row {score_name: score or None} over every method, and {method: judge_rows summary}."""
    merged = [{} for _ in rows]
    summaries = {}
    for method in methods:
        scores, summary = judge_rows(rows, judge, prompts, method, progress=progress, cache=cache)
        for m, s in zip(merged, scores):
            m.update({k: v for k, v in s.items() if k.startswith("geval_")})
        summaries[method] = summary
    return merged, summaries


def run_geval(jc, judge, judge_info: dict, all_rows: dict[str, list[dict]], sanity_items, out_dir: Path,
              progress: bool = True, seed: int = 0) -> dict:
    """Score every system (per-item scores merged into `all_rows`), run the sanity check; the "geval" section."""
    from evaluation.significance import paired_bootstrap

    prompts, methods = list(jc.prompts), list(jc.methods)
    contexts = [(p, m) for p in prompts for m in methods]
    cache = open_cache(jc.cache_dir or Path(out_dir) / "geval_cache")
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
    sanity = run_sanity(jc.sanity, seed, judge, sanity_items, prompts, methods, cache, out_dir, progress)
    if sanity is None:
        warnings.append("The judge sanity check was off (--judge.sanity 0) or had fewer than 2 eval items: nothing "
                        "shows "
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


def run_sanity(n_pairs: int, seed: int, judge, items, prompts, methods, cache, out_dir: Path,
               progress: bool) -> dict | None:
    """Planted pairs scored with every prompt x method: {"n_planted", "criterion", ctx: stats, "usage"}; None when
    off."""
    good, bad = planted_rows(items, n_pairs, seed=seed) if n_pairs else ([], [])
    if not good:
        return None
    planted = good + bad
    merged, summaries = score_rows(planted, judge, prompts, methods, cache, progress)
    n = len(good)
    out: dict = {"n_planted": n, "seed": seed, "criterion": CRITERION,
                 "rows": str(Path(out_dir) / "geval_sanity.jsonl"), "usage": summaries}
    for p in prompts:
        for m in methods:
            key = score_name(p, m)
            out[context_name(p, m)] = separation_stats([s.get(key) for s in merged[:n]],
                                                       [s.get(key) for s in merged[n:]])
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(out_dir) / "geval_sanity.jsonl", "w", encoding="utf-8") as fh:
        for row, scores in zip(planted, merged):
            fh.write(json.dumps({**row, **scores}, ensure_ascii=False, sort_keys=True) + "\n")
    return out


def agreement(all_rows: dict[str, list[dict]], contexts: list[tuple[str, str]]) -> dict:
    """Spearman of per-item G-Eval with ROUGE-L and BERTScore, and between contexts; rows of all systems pooled."""
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
