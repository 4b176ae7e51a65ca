"""Everything the study app serves from, loaded once at start: the answering system, the concept graph,
the study guide, the grader, the progress store, the FSRS scheduler and (when configured) the judge."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Services:
    config: object  # StudyConfig
    guide: object  # StudyGuide
    grader: object  # Grader
    store: object  # ProgressStore
    scheduler: object  # fsrs.Scheduler
    ctx: object  # prompting.graph_prompt.GraphContext (subgraphs for the Ask page)
    answerer: object | None = None  # Answerer; None serves the interview and progress pages only
    judge: object | None = None  # StudyJudge

    def close(self) -> None:
        self.store.close()


def build_services(cfg, kg_cfg=None, store_cfg=None, judge_cfg=None) -> Services:
    from evaluation.study.answerer import Answerer
    from evaluation.study.grader import Grader
    from evaluation.study.guide import StudyGuide
    from evaluation.study.schedule import make_scheduler
    from evaluation.study.store import ProgressStore
    from kg.config import KGConfig
    from kg.store import StoreConfig
    from prompting.graph_prompt import GraphContext

    t0 = time.perf_counter()
    answerer = None
    if cfg.model:
        answerer = Answerer(cfg.run_dir, cfg.system, cfg.max_new_tokens, cfg.quantization).load()
    if kg_cfg is None or store_cfg is None:
        run = None
        if cfg.run_dir:
            from model.rundir import RunDir

            run = RunDir.open(cfg.run_dir)
        kg_cfg = kg_cfg or (run.kg if run else KGConfig())
        store_cfg = store_cfg or (run.store if run else StoreConfig())
    ctx = answerer.runner.ctx if answerer is not None and answerer.runner.ctx is not None else None
    ctx = ctx or GraphContext(kg_cfg, store_cfg).open()
    guide = StudyGuide.load(cfg.corpus, ctx.index, cfg.work_dir, cfg.question_cache)
    judge = None
    if judge_cfg is not None and judge_cfg.kind is not None:
        from evaluation.geval import build_judge, open_cache
        from evaluation.study.judging import StudyJudge

        judge = StudyJudge(build_judge(judge_cfg)[0], guide.items, cfg.judge_sanity, open_cache(judge_cfg.cache_dir))
        if cfg.judge_sanity:
            judge.start_sanity()
    services = Services(
        cfg,
        guide,
        Grader(guide),
        ProgressStore(cfg.db),
        make_scheduler(cfg.desired_retention, cfg.fuzz),
        ctx,
        answerer,
        judge,
    )
    if answerer is not None and cfg.warm_up:
        answerer.warm_up()
    services.grader.grade(guide.items[0], guide.items[0].answer)  # loads the sentencizer, MiniLM and ROUGE once
    log.info("study app ready in %.1f s", time.perf_counter() - t0)
    return services
