"""Shared parsing and error handling for the kg entry points."""
from __future__ import annotations

import argparse
import logging
import sys

from data.cli import add_dataclass_args, dataclass_from_args
from kg.config import KGConfig
from kg.store import StoreConfig, StoreUnavailableError
from data.cli import ArgumentParser


def parser(prog: str, description: str, kg: bool = True) -> argparse.ArgumentParser:
    p = ArgumentParser(prog=prog, description=description)
    if kg:
        add_dataclass_args(p, KGConfig)
    add_dataclass_args(p, StoreConfig)
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    return p


def configs(args: argparse.Namespace, kg: bool = True):
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    store = dataclass_from_args(StoreConfig, args)
    return (dataclass_from_args(KGConfig, args), store) if kg else store


def run_main(fn) -> int:
    """Run an entry point; known failures become one paragraph on stderr and exit code 2."""
    from data.loaders import CorpusError
    from kg.vocabulary import VocabularyError

    try:
        return fn()
    except (StoreUnavailableError, VocabularyError, CorpusError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
