"""`python -m evaluation.study [--run_dir RUN] [--port N]`: the study app on http://127.0.0.1:PORT.

Ask a question (the model's answer streamed, the evidence and subgraph it came with, the study guide's
closest answers), practise in a mock interview (graded, scheduled by FSRS), follow progress per topic.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from data.cli import ArgumentParser


def build_parser() -> argparse.ArgumentParser:
    from data.cli import add_dataclass_args
    from evaluation.geval import JudgeConfig
    from evaluation.study.config import StudyConfig
    from kg.config import KGConfig
    from kg.store import StoreConfig

    p = ArgumentParser(prog="python -m evaluation.study", description=__doc__.splitlines()[0])
    add_dataclass_args(p, StudyConfig)
    add_dataclass_args(p, KGConfig, "kg")
    add_dataclass_args(p, StoreConfig, "store")
    add_dataclass_args(p, JudgeConfig, "judge")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("evaluation.study").setLevel(logging.INFO)
    from data.cli import dataclass_from_args, quiet_third_party
    from data.loaders import CorpusError
    from evaluation.geval import JudgeConfig
    from model.rundir import RunDirError
    from evaluation.study.config import StudyConfig
    from kg.config import KGConfig
    from kg.store import StoreConfig, StoreUnavailableError
    from model.load import AdapterNotFoundError
    from model.resolve import ModelNotFoundError

    quiet_third_party()
    try:
        cfg = dataclass_from_args(StudyConfig, args)
        given = lambda prefix: any(k.startswith(prefix + ".") for k in vars(args))  # noqa: E731
        kg_cfg = dataclass_from_args(KGConfig, args, "kg") if given("kg") else None
        store_cfg = dataclass_from_args(StoreConfig, args, "store") if given("store") else None
        judge_cfg = dataclass_from_args(JudgeConfig, args, "judge") if given("judge") else None
        if judge_cfg is not None and judge_cfg.kind is None:
            if not judge_cfg.model:
                raise ValueError("judge settings were given without --judge.kind (openai: an OpenAI-compatible "
                                 "endpoint; local: a model loaded here) or --judge.model")
            from dataclasses import replace

            judge_cfg = replace(judge_cfg, kind="openai")  # --judge.model alone: the endpoint judge, as before
        sock = bind(cfg.port)
        from evaluation.study.services import build_services

        services = build_services(cfg, kg_cfg, store_cfg, judge_cfg)
    except (
        CorpusError,
        RunDirError,
        AdapterNotFoundError,
        ModelNotFoundError,
        StoreUnavailableError,
        FileNotFoundError,
        ValueError,
        OSError,
        RuntimeError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(services, sock)
    return 0


def bind(port: int) -> socket.socket:
    """The listening socket on 127.0.0.1, bound before the slow loading so a busy port is reported at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise OSError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --port (0 for any free one)"
        ) from None
    sock.listen(128)  # a client that connects as soon as the URL is printed waits in the backlog, not refused
    return sock


def serve(services, sock: socket.socket) -> None:
    import uvicorn

    from evaluation.study.app import create_app

    app = create_app(services)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    a = services.answerer
    print(
        f"serving the StudyLLaMA study app at http://127.0.0.1:{port}/ "
        f"({'answers from ' + a.system + ': ' + a.why if a else 'no model'}; progress in {services.config.db})",
        flush=True,
    )
    try:
        server.run(sockets=[sock])
    finally:
        services.close()


if __name__ == "__main__":
    sys.exit(main())
