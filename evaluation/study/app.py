"""The study app's web side (FastAPI): three pages and the JSON API their script calls.

Pages (Jinja templates, autoescaped): Ask (/), Mock interview (/interview), Progress (/progress). Every
asset is served from this package (`static/`), nothing from a network. Learner text only ever reaches the
page as escaped template text or through `textContent` in the script, so HTML in an answer shows as text.

API (JSON; errors are {"error": message} with a 4xx status):
- POST /api/ask {question}: a text/event-stream of `context` (evidence, subgraph, study-guide answers),
  `token` (answer text as it is generated) and `done` (the final answer) or `error` events;
- GET /api/next?learner&mode=pick|due&domain&difficulty&topic: the next question to practise;
- POST /api/answer {learner, question_id, answer}: grade, save (one transaction) and return the grade;
- POST /api/attempts/{id}/judge {learner}: the judge's score of that attempt, when a judge is configured;
- GET /api/progress?learner, GET /api/export?learner, POST /api/import?learner (body: the exported JSON);
- GET /api/learners, POST /api/learners {name}, GET /api/status.
"""

import json
import logging
import random
import threading
from pathlib import Path
from urllib.parse import unquote

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
MAX_BODY_BYTES = 1 << 20  # an answer is at most 10,000 characters; a megabyte is far past any honest request
MAX_IMPORT_BYTES = 32 << 20
LEARNER_COOKIE = "studyllama_learner"


def create_app(services):
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
    from fastapi.staticfiles import StaticFiles
    from fastapi.templating import Jinja2Templates
    from pydantic import BaseModel
    from starlette.concurrency import run_in_threadpool

    from evaluation.study.answerer import QuestionError, check_question
    from evaluation.study.grader import AnswerError
    from evaluation.study.plots import mastery_svg
    from evaluation.study.portable import ProgressFileError, export_progress, import_progress, parse_progress
    from evaluation.study.store import LearnerError, check_name

    app = FastAPI(title="StudyLLaMA study app", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    guide, store = services.guide, services.store
    rng, rng_lock = random.Random(), threading.Lock()

    # --- errors ------------------------------------------------------------------------------------------
    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(AnswerError)
    @app.exception_handler(QuestionError)
    @app.exception_handler(LearnerError)
    @app.exception_handler(ProgressFileError)
    async def _refused(request, exc):
        return error(400, str(exc))

    @app.exception_handler(KeyError)
    async def _unknown(request, exc):
        return error(404, str(exc.args[0]) if exc.args else "not found")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc):
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}" for e in exc.errors()]
        return error(422, "the request is malformed: " + "; ".join(parts))

    @app.middleware("http")
    async def _limit_body(request: Request, call_next):
        limit = MAX_IMPORT_BYTES if request.url.path == "/api/import" else MAX_BODY_BYTES
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > limit:
            return error(413, f"the request body is {int(size):,} bytes, over this endpoint's {limit:,}-byte limit")
        return await call_next(request)

    # --- pages -------------------------------------------------------------------------------------------
    def learner_of(request) -> str | None:
        raw = request.cookies.get(LEARNER_COOKIE)
        try:
            return check_name(unquote(raw)) if raw else None
        except LearnerError:
            return None

    def page(request, name: str, **context):
        answerer = services.answerer
        return templates.TemplateResponse(
            request,
            name,
            {
                "page": name.split(".")[0],
                "learner": learner_of(request),
                "topics": guide.topics(),
                "system": answerer.system if answerer else None,
                "why": answerer.why if answerer else None,
                "judge": services.judge.name if services.judge else None,
                **context,
            },
        )

    @app.get("/", response_class=HTMLResponse)
    def ask_page(request: Request):
        return page(request, "ask.html")

    @app.get("/interview", response_class=HTMLResponse)
    def interview_page(request: Request):
        return page(request, "interview.html")

    @app.get("/progress", response_class=HTMLResponse)
    def progress_page(request: Request):
        learner = learner_of(request)
        data = progress_data(learner) if learner and learner in store.learners() else None
        return page(request, "progress.html", progress=data, plot=mastery_svg(data["mastery"]) if data else None)

    # --- ask -----------------------------------------------------------------------------------------
    class AskBody(BaseModel):
        question: str

    def ask_context(question: str) -> dict:
        from evaluation.html_plots import subgraph_svg
        from kg.textualize import evidence_lines

        sg = services.ctx.subgraphs([question])[0]
        answerer = services.answerer
        reads_graph = bool(answerer and answerer.reads_graph)
        # a graph system's own evidence settings decide what it is given; the page shows exactly that
        evidence = answerer.runner.graph_prompts([question])[0].evidence if reads_graph else evidence_lines(sg)
        return {
            "system": answerer.system if answerer else None,
            "reads_graph": reads_graph,
            "evidence": evidence,
            "graph_empty": sg.empty,
            "subgraph_svg": subgraph_svg(sg.to_dict()),
            "concepts": [{"name": n.name, "reason": n.reason} for n in sg.nodes],
            "study_guide": [
                {
                    "id": n.item.id,
                    "question": n.item.question,
                    "answer": n.item.answer,
                    "domain": n.item.domain,
                    "topic": n.item.topic,
                    "similarity": round(n.similarity, 3),
                }
                for n in guide.nearest_to_question(question, 3)
            ],
        }

    def sse(kind: str, data: dict) -> str:
        return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

    @app.post("/api/ask")
    async def ask(body: AskBody):
        question = check_question(body.question)
        if services.answerer is None:
            return error(503, "this app was started without a model; the Ask page cannot answer")
        context = await run_in_threadpool(ask_context, question)
        cancel = threading.Event()
        events = services.answerer.start(question, cancel)

        async def stream():
            try:
                yield sse("context", context)
                while True:
                    ev = await run_in_threadpool(events.get)
                    yield sse(ev.kind, ev.data)
                    if ev.kind != "token":
                        return
            finally:
                cancel.set()  # the page went away (or the answer ended): free the model

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    # --- mock interview ----------------------------------------------------------------------------------
    def question_view(item) -> dict:
        return {
            "id": item.id,
            "question": item.question,
            "domain": item.domain,
            "difficulty": item.difficulty,
            "topic": item.topic,
        }

    @app.get("/api/question/{question_id}")
    def question(question_id: str):
        return question_view(guide.get(question_id))

    @app.get("/api/next")
    def next_question(
        learner: str | None = None,
        mode: str = "pick",
        domain: str | None = None,
        difficulty: str | None = None,
        topic: str | None = None,
    ):
        if mode not in ("pick", "due"):
            return error(400, f"mode must be pick or due, got {mode!r}")
        pool = guide.select(domain or None, difficulty or None, topic or None)
        if not pool:
            return error(404, f"no question matches domain={domain!r}, difficulty={difficulty!r}, topic={topic!r}")
        known = {c["question_id"]: c for c in store.cards(learner)} if learner and learner in store.learners() else {}
        if mode == "due":
            ids = {it.id for it in pool}
            due = [c for c in store.due(learner) if c["question_id"] in ids] if known else []
            if not due:
                upcoming = sorted(c["due"] for q, c in known.items() if q in ids)
                when = f"; the next one is due at {upcoming[0]}" if upcoming else ""
                return {"question": None, "message": f"nothing is due now{when}. Pick a new question instead."}
            return {
                "question": question_view(guide.get(due[0]["question_id"])),
                "due": due[0]["due"],
                "due_count": len(due),
            }
        fresh = [it for it in pool if it.id not in known]
        with rng_lock:
            item = rng.choice(fresh or pool)
        return {"question": question_view(item), "seen_before": item.id in known}

    class AnswerBody(BaseModel):
        learner: str
        question_id: str
        answer: str

    @app.post("/api/answer")
    def answer(body: AnswerBody):
        learner = check_name(body.learner)
        item = guide.get(body.question_id)
        grade = services.grader.grade(item, body.answer).to_dict()
        saved = store.save_attempt(learner, item, body.answer.strip(), grade, services.scheduler)
        return {
            "attempt": saved,
            "grade": grade,
            "answer": body.answer.strip(),
            "question": question_view(item),
            "judge_available": services.judge is not None,
        }

    class LearnerBody(BaseModel):
        learner: str

    @app.post("/api/attempts/{attempt_id}/judge")
    def judge_attempt(attempt_id: int, body: LearnerBody):
        if services.judge is None:
            return error(404, "no judge is configured (start the app with --judge.model to add one)")
        a = store.attempt(attempt_id, body.learner)
        item = guide.get(a["question_id"])
        result = services.judge.score(item.question, a["answer"], item.answer)
        store.set_judge(attempt_id, body.learner, result)
        return result

    # --- learners and progress ---------------------------------------------------------------------------
    class NameBody(BaseModel):
        name: str

    @app.get("/api/learners")
    def learners():
        return {"learners": store.learners()}

    @app.post("/api/learners")
    def add_learner(body: NameBody):
        return {"learner": store.add_learner(body.name)}

    def progress_data(learner: str) -> dict:
        attempts = store.attempts(learner, limit=50)
        for a in attempts:
            a["question"] = guide.by_id[a["question_id"]].question if a["question_id"] in guide.by_id else None
        due = store.due(learner)
        cards = store.cards(learner)
        return {
            "learner": learner,
            "attempts": attempts,
            "n_attempts": len(store.attempts(learner)),
            "due": [
                {
                    "question_id": c["question_id"],
                    "due": c["due"],
                    "question": guide.by_id[c["question_id"]].question if c["question_id"] in guide.by_id else None,
                }
                for c in due
            ],
            "upcoming": [{"question_id": c["question_id"], "due": c["due"]} for c in cards if c not in due][:20],
            "mastery": store.mastery(learner),
        }

    @app.get("/api/progress")
    def progress(learner: str):
        name = check_name(learner)
        if name not in store.learners():
            return error(404, f"no learner named {name!r}")
        data = progress_data(name)
        data["plot_svg"] = mastery_svg(data["mastery"])
        return data

    @app.get("/api/export")
    def export(learner: str):
        doc = export_progress(store, check_name(learner))
        safe = "".join(ch if ch.isalnum() else "-" for ch in learner)[:40]
        return Response(
            json.dumps(doc, ensure_ascii=False, indent=1),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="studyllama-progress-{safe}.json"'},
        )

    @app.post("/api/import")
    async def import_(request: Request, learner: str | None = None):
        body = await request.body()
        doc = parse_progress(body)
        return await run_in_threadpool(import_progress, store, doc, learner or None)

    @app.get("/api/status")
    def status():
        answerer = services.answerer
        return {
            "system": answerer.system if answerer else None,
            "why": answerer.why if answerer else None,
            "questions": len(guide.items),
            "concepts": len(guide.index.ids),
            "judge": None
            if services.judge is None
            else {"name": services.judge.name, "sanity": services.judge.verdict()},
        }

    return app
