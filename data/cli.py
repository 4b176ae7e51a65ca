"""Config dataclasses as the command line (litgpt's habit), shared by every entry point.

Each field becomes a flag (`--name`, or `--section.name` when a prefix is given) whose help is the
field's docstring. Flags default to "not given", so the precedence is: dataclass default < YAML
preset < flags. Problems in several fields are reported together by the dataclass's __post_init__.
This module sits in data/, the lowest layer, so that every package can use it without importing upwards.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (a string literal right after a field) of a dataclass."""
    docs: dict[str, str] = {}
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return docs
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(inner type, optional) for `X | None`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _converter(tp: Any, optional: bool):
    def convert(text: str):
        if optional and text.lower() in ("none", "null"):
            return None
        return tp(text)

    return convert


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    group = parser.add_argument_group(prefix or cls.__name__)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        flag = f"--{prefix + '.' if prefix else ''}{f.name}"
        tp, optional = _base_type(hints[f.name])
        origin = typing.get_origin(tp)
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": f"{prefix}.{f.name}" if prefix else f.name}
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        # argparse treats "%" as a format character in help texts
        kwargs["help"] = f"{docs.get(f.name, '')} (default: {default!r})".strip().replace("%", "%%")
        if tp is bool:
            kwargs.update(type=_parse_bool, metavar="BOOL")
        elif origin is list:
            (inner,) = typing.get_args(tp)
            kwargs.update(nargs="+", type=inner)
        elif origin is dict:
            kwargs.update(nargs="+", metavar="KEY=VALUE", type=str)
        elif tp in (int, float, str):
            kwargs.update(type=_converter(tp, optional))
        else:
            kwargs.update(type=str)
        group.add_argument(flag, **kwargs)


def _coerce(cls: type, name: str, value: Any) -> Any:
    tp, _ = _base_type(typing.get_type_hints(cls)[name])
    if typing.get_origin(tp) is dict and isinstance(value, list):
        out = {}
        for pair in value:
            key, sep, val = pair.partition("=")
            if not sep:
                raise ValueError(f"--{name} expects KEY=VALUE pairs, got {pair!r}")
            out[key] = val
        return out
    if typing.get_origin(tp) is list and isinstance(value, list) and typing.get_args(tp) == (str,):
        # `--systems plain,finetuned` and `--systems plain finetuned` mean the same
        return [part.strip() for v in value for part in str(v).split(",") if part.strip()]
    return value


def dataclass_from_args(cls: type, args: argparse.Namespace, prefix: str = "", base: dict | None = None):
    """Build `cls` from a preset section (`base`) overridden by the flags that were given."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    values = dict(base or {})
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s) in preset: {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}")
    for key, value in vars(args).items():
        section, _, name = key.rpartition(".")
        if section == prefix and name in names:
            values[name] = value
    return cls(**{k: _coerce(cls, k, v) for k, v in values.items()})


def load_preset(path: str | Path) -> dict:
    """Read a YAML preset: a mapping of section name -> mapping of field -> value."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ValueError(f"preset {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"preset {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"preset {path} must map section names (data, model, train, ...) to mappings of fields")
    return data


def quiet_third_party() -> None:
    """Entry points only: silence known, harmless noise from dependencies so progress stays readable.

    bitsandbytes warns on every CPU load that it cannot fetch its faster 4-bit kernel from the hub (the
    built-in path is correct, only slower); transformers and peft emit deprecation notices. Nothing about
    correctness is silenced here: a warning that results may be wrong is an error inside training
    (model.quant.autograd_fallback_is_an_error).
    """
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.WARNING)  # rouge-score announces its tokenizer on every use
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
