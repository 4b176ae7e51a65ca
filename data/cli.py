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


class ArgumentParser(argparse.ArgumentParser):
    """argparse for the entry points: no silent abbreviations (`--train.max_step` is an error, not max_steps),
    and a mistyped flag gets a two-line error with the nearest real flags instead of the whole usage."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def known_flags(self) -> list[str]:
        return [o for a in self._actions for o in a.option_strings if o.startswith("--")]

    def error(self, message: str):
        import difflib
        import re
        import sys

        hints = []
        for bad in re.findall(r"(--[\w.\-]+)", message) if "unrecognized arguments" in message else []:
            close = difflib.get_close_matches(bad.split("=")[0], self.known_flags(), n=3, cutoff=0.75)
            if close:
                hints.append(f"{bad}: did you mean {' or '.join(close)}?")
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        for h in hints:
            sys.stderr.write(f"  {h}\n")
        sys.stderr.write(f"  (`{self.prog} --help` lists every flag)\n")
        raise SystemExit(2)


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


def _nested(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type, prefix: str = "",
                       exclude: tuple[str, ...] = ()) -> None:
    """One flag per field of `cls`; a field that is itself a dataclass becomes a group of flags named
    `--<prefix>.<field>.<name>` (EvalConfig's judge: `--judge.model`). `exclude` leaves fields out."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    group = parser.add_argument_group(prefix or cls.__name__)
    for f in dataclasses.fields(cls):
        if not f.init or f.name in exclude:
            continue
        dest = f"{prefix}.{f.name}" if prefix else f.name
        tp, optional = _base_type(hints[f.name])
        if _nested(tp):
            add_dataclass_args(parser, tp, dest)
            continue
        flag = f"--{dest}"
        origin = typing.get_origin(tp)
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": dest}
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


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _type_problem(tp: Any, optional: bool, value: Any) -> str | None:
    """Why `value` (from a YAML preset or a saved config) does not fit a field of type `tp`, or None."""
    if value is None:
        return None if optional else "must not be null"
    origin = typing.get_origin(tp)
    if origin is list:
        (inner,) = typing.get_args(tp)
        if isinstance(value, str) and inner is str:
            return None  # "a,b" is a list written on one line; split later
        if not isinstance(value, list):
            return f"must be a list, got {value!r}"
        bad = [v for v in value if _type_problem(inner, False, v)]
        return f"must be a list of {_TYPE_NAMES.get(inner, inner)} values, got {bad[0]!r} in it" if bad else None
    if origin is dict:
        return None if isinstance(value, dict) else f"must be a mapping, got {value!r}"
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif tp is str:
        ok = isinstance(value, str)
    else:
        return None
    return None if ok else f"must be {_TYPE_NAMES[tp]}, got {value!r} ({type(value).__name__})"


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
    if typing.get_origin(tp) is list and isinstance(value, (list, str)) and typing.get_args(tp) == (str,):
        # `--systems plain,finetuned` and `--systems plain finetuned` mean the same (and "a,b" in a preset)
        value = [value] if isinstance(value, str) else value
        return [part.strip() for v in value for part in str(v).split(",") if part.strip()]
    return value


def dataclass_from_args(cls: type, args: argparse.Namespace | None = None, prefix: str = "", base: dict | None = None,
                        where: str = ""):
    """Build `cls` from a preset section (`base`) overridden by the flags that were given. Preset values are
    checked against the field types first (every problem at once); `where` names the section in messages."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    where = where or prefix or cls.__name__
    values = dict(dataclasses.asdict(base) if dataclasses.is_dataclass(base) else base or {})
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s) in {where}: {', '.join(unknown)}; valid keys: "
                         f"{', '.join(sorted(names))}")
    problems = []
    for name, value in values.items():
        tp, optional = _base_type(hints[name])
        if not _nested(tp):
            why = _type_problem(tp, optional, value)
            if why:
                problems.append(f"{where}.{name} {why}")
        elif value is not None and not isinstance(value, (dict, tp)):
            problems.append(f"{where}.{name} must be a mapping of {tp.__name__} fields, got {value!r}")
    if problems:
        raise ValueError(f"invalid {cls.__name__} value(s):\n  - " + "\n  - ".join(problems))
    for key, value in vars(args or argparse.Namespace()).items():
        section, _, name = key.rpartition(".")
        if section == prefix and name in names:
            values[name] = value
    for f in dataclasses.fields(cls):
        tp, _ = _base_type(hints[f.name])
        if f.init and _nested(tp):
            sub_prefix = f"{prefix}.{f.name}" if prefix else f.name
            values[f.name] = dataclass_from_args(tp, args, sub_prefix, values.get(f.name), f"{where}.{f.name}")
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
