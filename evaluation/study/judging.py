"""An optional G-Eval judge for the mock interview, shown beside its own sanity verdict.

The judge is the project's OpenAI-compatible one (`evaluation.judge.OpenAIJudge`), scoring with the
reference-aware G-Eval prompt by the probability-weighted method, through `judge_rows` (retries, per-item
failures, the shared judgement cache). Before its scores mean anything it must pass the sanity check of
`evaluation.judge_sanity` (reference answers against answers shuffled from other questions); the check runs
in the background when the app starts and every judged grade carries its verdict, with the warning when
the judge does not separate. Without a configured judge no judge score exists anywhere in the app.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)
PROMPT, METHOD = "reference", "probability"


class StudyJudge:
    def __init__(self, judge, items, sanity_pairs: int = 20, cache=None):
        self.judge, self.items, self.sanity_pairs, self.cache = judge, items, sanity_pairs, cache
        self.sanity: dict | None = None
        self.sanity_error: str | None = None
        self._done = threading.Event()

    @property
    def name(self) -> str:
        return self.judge.cache_identity()["model"]

    def start_sanity(self) -> threading.Thread:
        t = threading.Thread(target=self._run_sanity, name="judge-sanity", daemon=True)
        t.start()
        return t

    def _run_sanity(self) -> None:
        from evaluation.geval import judge_rows, score_name
        from evaluation.geval.sanity import planted_rows, separation_stats, verdict_warning

        try:
            good, bad = planted_rows(self.items, self.sanity_pairs)
            scores, _ = judge_rows(good + bad, self.judge, (PROMPT,), METHOD, cache=self.cache)
            key = score_name(PROMPT, METHOD)
            stats = separation_stats([s[key] for s in scores[: len(good)]], [s[key] for s in scores[len(good) :]])
            stats["warning"] = verdict_warning(f"G-Eval {PROMPT}/{METHOD}", stats, self.name)
            self.sanity = stats
            log.info(
                "judge %s sanity check: %s (%d of %d pairs)",
                self.name,
                stats["verdict"],
                stats["wins"],
                stats["n_pairs"],
            )
        except Exception as exc:  # the app goes on without a verdict, and says so next to every judge score
            log.warning("judge sanity check failed: %s", exc, exc_info=True)
            self.sanity_error = f"{type(exc).__name__}: {exc}"
        finally:
            self._done.set()

    def verdict(self, wait_s: float = 0.0) -> dict:
        self._done.wait(wait_s)
        if self.sanity is not None:
            return {"state": "done", **self.sanity}
        if self.sanity_error is not None:
            return {
                "state": "failed",
                "warning": f"the judge's sanity check failed ({self.sanity_error}); "
                "its scores are not shown to measure quality.",
            }
        return {
            "state": "running",
            "warning": "the judge's sanity check is still running; until it ends, its scores "
            "are not shown to measure quality.",
        }

    def score(self, question: str, answer: str, reference: str) -> dict:
        """The judge's G-Eval score (1-5) of one answer, with the sanity verdict as it stands."""
        from evaluation.geval import judge_rows, score_name

        scores, summary = judge_rows(
            [{"id": "study", "question": question, "prediction": answer, "reference": reference}],
            self.judge,
            (PROMPT,),
            METHOD,
            cache=self.cache,
        )
        value = scores[0][score_name(PROMPT, METHOD)]
        failure = summary["failures"][0]["message"] if summary.get("failures") else None
        return {
            "judge": self.name,
            "prompt": PROMPT,
            "method": METHOD,
            "score": value,
            "failure": failure,
            "sanity": self.verdict(),
        }
