"""The HTTP side: a FastAPI app on uvicorn around one loaded model.

Routes: `POST /v1/chat/completions`, `GET /v1/models` (also without the /v1 prefix) and `GET /health`.
What a model server must have, and where it lives here:
- one generation at a time, in a worker thread; a bounded queue in front of it (503 when full);
- request bodies read with a size limit (413) and a time limit (408), so a stalled upload holds a coroutine for
  `body_timeout` seconds and never a thread; malformed bodies (not UTF-8, not JSON, nested too deep, a lone
  surrogate) answer 400;
- a time limit per request, counted from its arrival (504), and cancellation when the client goes away: the
  handler polls the connection and sets the job's stop flag, which `generate` reads after every step;
- an optional API key (`Authorization: Bearer KEY`), required when the server listens beyond loopback.
"""
# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations (Request) as real classes,
# and those are imported inside build_app
import asyncio
import hmac
import ipaddress
import logging
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from evaluation.serving.generation import GenerationCancelled, chat_completion
from evaluation.serving.protocol import (
    CompletionParams, RequestError, completion_response, decode_json_body, error_body, parse_request,
)

log = logging.getLogger(__name__)

API_KEY_ENV = "STUDYLLAMA_API_KEY"
POLL_S = 0.1  # how often a waiting handler looks at its client's connection and its deadline
CLIENT_CLOSED = 499  # nginx's status for "the client closed the request"; nobody reads it


@dataclass
class ServeConfig:
    """The server's limits and access; every field is a flag of `python -m evaluation.serve`."""

    api_key: str | None = None
    """Key clients must send (`Authorization: Bearer KEY`, the openai client's api_key); default: the
    STUDYLLAMA_API_KEY environment variable, which keeps the key out of the process list. Required when --host
    is not a loopback address."""
    default_max_tokens: int = 256
    """max_tokens when a request gives none."""
    max_tokens_limit: int = 4096
    """Largest max_tokens a request may ask for (400 above it)."""
    max_n: int = 20
    """Largest n (choices per request) a request may ask for (400 above it)."""
    max_body_bytes: int = 1 << 20
    """Largest request body in bytes (413 above it)."""
    body_timeout: float = 30.0
    """Seconds a client has to send its whole request body (408 after that)."""
    request_timeout: float = 300.0
    """Seconds a request may take from arrival to answer, queueing included (504 after that; generation stops)."""
    max_queue: int = 8
    """Requests that may wait while one generates (503 when that many already wait)."""
    max_connections: int = 64
    """Open connections and requests uvicorn accepts at once (it answers 503 beyond that)."""

    def __post_init__(self):
        problems = [f"{name} must be at least 1, got {getattr(self, name)!r}"
                    for name in ("default_max_tokens", "max_tokens_limit", "max_n", "max_body_bytes", "max_connections")
                    if getattr(self, name) < 1]
        problems += [f"{name} must be greater than 0, got {getattr(self, name)!r}"
                     for name in ("body_timeout", "request_timeout") if not getattr(self, name) > 0]
        if self.max_queue < 0:
            problems.append(f"max_queue must be 0 or more, got {self.max_queue!r}")
        if self.default_max_tokens > self.max_tokens_limit:
            problems.append(f"default_max_tokens ({self.default_max_tokens}) is above max_tokens_limit "
                            f"({self.max_tokens_limit})")
        if self.api_key is not None and not self.api_key.strip():
            problems.append("api_key is empty")
        if problems:
            raise ValueError("; ".join(problems))


class ApiError(Exception):
    """An answer other than 200, in OpenAI's error shape."""

    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error",
                 code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.param, self.kind, self.code, self.headers = status, param, kind, code, headers


@dataclass(eq=False)  # compared and hashed by identity: the worker keeps a set of live jobs
class Job:
    """One admitted request on its way through the queue and the model."""

    messages: list[dict]
    params: CompletionParams
    deadline: float  # time.monotonic() by which it must be answered
    stop_reason: str | None = None
    stopped: threading.Event = field(default_factory=threading.Event)

    def should_stop(self) -> bool:
        return self.stopped.is_set() or time.monotonic() >= self.deadline

    def stop(self, reason: str) -> None:
        if not self.stopped.is_set():
            self.stop_reason = reason
            self.stopped.set()


class ModelWorker:
    """The model behind a one-thread executor, with a bounded number of admitted jobs (running + waiting).

    `generate(model, tokenizer, messages, params, use_chat_template=..., should_stop=...)` returns what
    `chat_completion` returns; pass another function (e.g. one that adds graph evidence to the messages) to serve
    another system. It must end soon after `should_stop()` turns true.
    """

    def __init__(self, model, tokenizer, name: str, max_queue: int, generate: Callable = chat_completion,
                 use_chat_template: bool = True):
        self.model, self.tokenizer, self.name, self.generate = model, tokenizer, name, generate
        self.use_chat_template = use_chat_template
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")
        self.slots = threading.BoundedSemaphore(max_queue + 1)
        self.lock = threading.Lock()
        self.live: set[Job] = set()
        self.admitted = self.running = self.served = 0

    def submit(self, job: Job) -> Future:
        """Queue a job, or ApiError 503 when the queue is full."""
        if not self.slots.acquire(blocking=False):
            raise ApiError(503, "the server is busy: its request queue is full; retry later", kind="server_error",
                           code="queue_full", headers={"Retry-After": "1"})
        with self.lock:
            self.admitted += 1
            self.live.add(job)
        future = self.executor.submit(self._run, job)
        future.add_done_callback(lambda _: self._release(job))
        return future

    def _release(self, job: Job) -> None:
        with self.lock:
            self.admitted -= 1
            self.live.discard(job)
        self.slots.release()

    def _run(self, job: Job) -> dict:
        if job.should_stop():  # its client left, or its time ran out, while it waited
            raise GenerationCancelled("dropped before it started")
        with self.lock:
            self.running += 1
        try:
            result = self.generate(self.model, self.tokenizer, job.messages, job.params,
                                   use_chat_template=self.use_chat_template, should_stop=job.should_stop)
        finally:
            with self.lock:
                self.running -= 1
        with self.lock:
            self.served += 1
        return result

    def counts(self) -> dict:
        with self.lock:
            return {"completions_served": self.served, "running": self.running,
                    "waiting": self.admitted - self.running}

    def close(self) -> None:
        """Stop every job and the worker thread (the running generation ends after its current step)."""
        with self.lock:
            jobs = list(self.live)
        for job in jobs:
            job.stop("server_stopping")
        self.executor.shutdown(wait=True, cancel_futures=True)


async def read_body(request, limit: int, timeout: float) -> bytes:
    """The whole body, or ApiError 413 (over `limit` bytes) / 408 (not all sent within `timeout` seconds)."""
    from starlette.requests import ClientDisconnect

    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ApiError(413, f"the request body is over the server's limit of {limit} bytes (--max_body_bytes)",
                       headers={"Connection": "close"})
    chunks, size = [], 0

    async def collect():
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the request body is over the server's limit of {limit} bytes (--max_body_bytes)",
                               headers={"Connection": "close"})
            chunks.append(chunk)

    try:
        await asyncio.wait_for(collect(), timeout)
    except asyncio.TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {timeout:g} s (--body_timeout)",
                       headers={"Connection": "close"}) from None
    except ClientDisconnect:
        raise ApiError(CLIENT_CLOSED, "the client closed the connection while sending") from None
    return b"".join(chunks)


async def await_job(worker: ModelWorker, job: Job, future: Future, request, timeout: float) -> dict:
    """The job's result; stops it (and answers 504 or 499) when its time runs out or its client goes away."""
    done = asyncio.wrap_future(future)
    try:
        while not done.done():
            await asyncio.wait([done], timeout=POLL_S)
            if done.done():
                break
            if await request.is_disconnected():
                job.stop("client_gone")
            elif time.monotonic() >= job.deadline:
                job.stop("timeout")
            if job.stopped.is_set():  # a waiting job is dropped when its turn comes; answer now
                break
    finally:
        if not done.done():
            job.stop(job.stop_reason or "server_stopping")
            done.add_done_callback(lambda f: f.cancelled() or f.exception())  # nobody awaits it any more
    if done.done() and not done.cancelled():
        try:
            return done.result()
        except RequestError as exc:
            raise ApiError(400, str(exc), param=exc.param) from None
        except GenerationCancelled:
            pass
        except Exception as exc:  # the server stays up for the next request
            log.exception("generation failed")
            raise ApiError(500, f"generation failed: {type(exc).__name__}: {exc}", kind="server_error") from None
    reason = job.stop_reason or ("timeout" if time.monotonic() >= job.deadline else "server_stopping")
    log.info("request stopped: %s", reason)
    if reason == "timeout":
        raise ApiError(504, f"the request took longer than the server's limit of {timeout:g} s (--request_timeout)",
                       kind="server_error", code="timeout")
    if reason == "client_gone":
        raise ApiError(CLIENT_CLOSED, "the client went away")
    raise ApiError(503, "the server is stopping", kind="server_error")


def build_app(worker: ModelWorker, cfg: ServeConfig):
    """The FastAPI app serving `worker`'s model under the limits of `cfg`."""
    from contextlib import asynccontextmanager

    from fastapi import Depends, FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    @asynccontextmanager
    async def lifespan(app):
        yield
        await asyncio.get_running_loop().run_in_executor(None, worker.close)

    # no /docs or /openapi.json: the API is OpenAI's, documented there and in this module
    app = FastAPI(title="StudyLLaMA model server", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    started = int(time.time())
    key = cfg.api_key.encode("utf-8") if cfg.api_key else None

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return JSONResponse(error_body(str(exc), exc.param, exc.kind, exc.code), exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):  # unknown routes and methods, in OpenAI's shape too
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message = f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405) else str(exc.detail)
        return JSONResponse(error_body(message, kind=kind), exc.status_code, headers=exc.headers)

    def authorised(request: Request) -> None:
        if key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode("utf-8"), key):
            raise ApiError(401, "missing or wrong API key: send `Authorization: Bearer KEY`", code="invalid_api_key")

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": worker.name, **worker.counts()}

    @app.get("/v1/models", dependencies=[Depends(authorised)])
    @app.get("/models", dependencies=[Depends(authorised)], include_in_schema=False)
    async def models():
        card = {"id": worker.name, "object": "model", "created": started, "owned_by": "studyllama"}
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions", dependencies=[Depends(authorised)])
    @app.post("/chat/completions", dependencies=[Depends(authorised)], include_in_schema=False)
    async def chat_completions(request: Request):
        arrived = time.monotonic()
        raw = await read_body(request, cfg.max_body_bytes, cfg.body_timeout)
        try:
            name, messages, params = parse_request(decode_json_body(raw), cfg.default_max_tokens,
                                                   cfg.max_tokens_limit, cfg.max_n)
        except RequestError as exc:
            raise ApiError(400, str(exc), param=exc.param) from None
        if name != worker.name:
            raise ApiError(404, f"model {name!r} is not served here; this server has {worker.name!r}",
                           param="model", code="model_not_found")
        job = Job(messages, params, deadline=arrived + cfg.request_timeout)
        result = await await_job(worker, job, worker.submit(job), request, cfg.request_timeout)
        return completion_response(name, result)

    return app


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback one (a name that does not resolve is not)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


class ModelServer:
    """uvicorn serving one model on its own thread: `start()`, `url`, `stop()` (or use it as a context manager).

    Refuses (ValueError) to listen beyond loopback without an API key.
    """

    def __init__(self, model, tokenizer, name: str, config: ServeConfig | None = None, host: str = "127.0.0.1",
                 port: int = 0, generate: Callable = chat_completion, use_chat_template: bool = True):
        self.config = config or ServeConfig()
        if not self.config.api_key and not is_loopback(host):
            raise ValueError(f"{host} is reachable from other machines: set an API key (--api_key or "
                             f"${API_KEY_ENV}) or listen on 127.0.0.1")
        self.host, self.port = host, port
        self.worker = ModelWorker(model, tokenizer, name, self.config.max_queue, generate, use_chat_template)
        self.app = build_app(self.worker, self.config)
        self._server = None
        self._thread: threading.Thread | None = None

    def _bind(self) -> socket.socket:
        """The listening socket, bound now so that port 0 becomes a real port before the URL is reported."""
        family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        return sock

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self, timeout: float = 30.0) -> "ModelServer":
        """Listen and serve on a background thread; returns once uvicorn accepts connections (OSError if the
        address cannot be bound)."""
        import uvicorn

        sock = self._bind()
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="on", timeout_keep_alive=5,
                                limit_concurrency=self.config.max_connections, timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name="uvicorn",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError("the HTTP server did not start; see the log above")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop the running generation and the server; waits for both."""
        if self._server is None:
            return
        with self.worker.lock:
            jobs = list(self.worker.live)
        for job in jobs:  # so that in-flight handlers answer at once instead of holding the shutdown
            job.stop("server_stopping")
        self._server.should_exit = True
        self._thread.join()
        self._server = None

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
