"""`python -m evaluation.serve`: a loaded model behind an OpenAI-compatible chat-completions endpoint.

Serves the base model ("plain") or base + a training run's LoRA adapter ("finetuned") at
`POST /v1/chat/completions`, with `GET /v1/models` and `GET /health`, on FastAPI + uvicorn (evaluation/serving/:
the request format, the model side, and the server with its limits, queue, time limits, cancellation and API key).
This module loads the model and reads the command line.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from evaluation.serving.app import API_KEY_ENV, ModelServer, ServeConfig
from model.modes import MODES, PLAIN
from data.cli import ArgumentParser

log = logging.getLogger(__name__)

# the systems a chat request can reach: plain and every mode that reads no graph (graph systems need evidence)
SYSTEMS = tuple([PLAIN] + [m.system for m in MODES.values() if not m.reads_graph])


def load_system(run_dir: str | None, system: str, model_name: str | None, overrides: dict):
    """(model, tokenizer) for a system: the run's base model (+ the trained weights of the run providing `system`,
    model.rundir), or `model_name`. ValueError when the run directory cannot be read."""
    from dataclasses import replace

    from model.config import ModelConfig
    from model.load import load_model
    from model.modes import PLAIN
    from model.rundir import RunDir, find_system_runs

    run = RunDir.open(run_dir) if run_dir else None
    if run is not None and system != PLAIN:
        run = find_system_runs(run_dir, [], [system])[system]
        run.check_weights()  # before the model is loaded
    cfg = run.model if run is not None else ModelConfig(name=model_name or "bundled")
    cfg = replace(cfg, **({"name": model_name} if run is not None and model_name else {}),
                  **{k: v for k, v in overrides.items() if v is not None})
    model, tok = load_model(cfg)
    if run is not None and system != PLAIN:
        model = run.load_trained(model, tok)
    model.eval()
    return model, tok


def main(argv: list[str] | None = None) -> int:
    from data.cli import add_dataclass_args, dataclass_from_args

    parser = ArgumentParser(prog="python -m evaluation.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", help="training run directory: its config.json's model section "
                                          "(and adapter/ for finetuned)")
    parser.add_argument("--system", choices=SYSTEMS, default="plain",
                        help="plain: the base model; another: the run's trained system (finetuned: base + LoRA)")
    parser.add_argument("--model", help="model to serve without a run dir (bundled, an HF id in the local cache, "
                                        "a folder, a .gguf); default bundled")
    parser.add_argument("--quantization", choices=("nf4", "none"), help="default: the run's setting, else none")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: the run's setting, else auto")
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"),
                        help="default: the run's setting, else auto")
    parser.add_argument("--served_name", help="model name clients must send (default: the system name with "
                                              "--run_dir, else the model name)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1; any other "
                                                            "needs an API key)")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port; the URL is printed)")
    parser.add_argument("--raw_prompt", action="store_true",
                        help="join message texts instead of applying the chat template")
    add_dataclass_args(parser, ServeConfig)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from data.cli import quiet_third_party

    quiet_third_party()
    try:
        cfg = dataclass_from_args(ServeConfig, args)
        if cfg.api_key is None and os.environ.get(API_KEY_ENV):
            cfg = ServeConfig(**{**cfg.__dict__, "api_key": os.environ[API_KEY_ENV]})
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.system != PLAIN and not args.run_dir:
        print(f"error: --system {args.system} needs --run_dir (the run whose adapter to load)", file=sys.stderr)
        return 2
    from evaluation.serving.app import is_loopback

    if not cfg.api_key and not is_loopback(args.host):  # refuse before spending a minute loading the model
        print(f"error: --host {args.host} is reachable from other machines; set an API key (--api_key, or "
              f"${API_KEY_ENV} to keep it out of the process list) or listen on 127.0.0.1", file=sys.stderr)
        return 2
    overrides = {"quantization": args.quantization or (None if args.run_dir else "none"), "device": args.device,
                 "dtype": args.dtype}
    try:
        model, tok = load_system(args.run_dir, args.system, args.model, overrides)
    except Exception as exc:  # ModelNotFoundError, AdapterNotFoundError, bad config: say it and stop
        print(f"error: could not load the model: {exc}", file=sys.stderr)
        return 2
    name = args.served_name or (args.system if args.run_dir else (args.model or "bundled"))
    server = ModelServer(model, tok, name, cfg, host=args.host, port=args.port, use_chat_template=not args.raw_prompt)
    try:
        server.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"serving {name!r} at {server.url} (POST {server.url}/chat/completions); Ctrl-C stops", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    print("server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
