"""Optional LLM extraction of typed triples, constrained by a JSON schema.

The model sees the relation set with its meanings, the vocabulary concepts found in the passage, and
the passage; it must answer with JSON matching TRIPLES_SCHEMA. Every returned triple is checked: the
relation must be in the closed set, head and tail must name known concepts (by id, name or alias), and
both must be mentioned in the passage, so a model cannot add concepts or relations from thin air.

Any OpenAI-compatible chat-completions endpoint works (`OpenAICompleter`: GPT-4-class models, or a
local model served behind such an endpoint). kg sits below model/ in the pipeline, so it never loads
an LLM itself: a caller can pass any `complete(prompt) -> str` function instead.
"""
from __future__ import annotations

import json
import logging
import os
import re
from typing import Callable

from kg.resolve import normal_form
from kg.schema import RELATIONS, Concept, Triple

log = logging.getLogger(__name__)

TRIPLES_SCHEMA = {
    "type": "object",
    "properties": {
        "triples": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "head": {"type": "string"},
                    "relation": {"type": "string", "enum": list(RELATIONS)},
                    "tail": {"type": "string"},
                },
                "required": ["head", "relation", "tail"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["triples"],
    "additionalProperties": False,
}

PROMPT = (
    """Extract the relations that the passage itself states between the listed concepts.
Relation types (head -> tail):
{relations}
Concepts in the passage (use these ids): {concepts}
Passage: {text}
Answer with JSON only: {{"triples": [{{"head": "<id>", "relation": "<TYPE>", "tail": "<id>"}}]}}. """
    "Use an empty list if the passage states none."
)

Completer = Callable[[str], str]


def build_prompt(text: str, mentioned: list[Concept]) -> str:
    rels = "\n".join(f"- {r}: {meaning}" for r, meaning in RELATIONS.items())
    concepts = ", ".join(f"{c.id} ({c.name})" for c in mentioned)
    return PROMPT.format(relations=rels, concepts=concepts, text=text.strip())


def parse_triples(raw: str, allowed: dict[str, str], doc_id: str, text: str) -> tuple[list[Triple], list[str]]:
    """Validate the model's JSON. `allowed` maps normalised ids, names and aliases to concept ids."""
    problems: list[str] = []
    body = re.sub(r"^```(?:json)?\s*|\s*```$", "", raw.strip())
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        return [], [f"{doc_id}: the model's answer is not JSON ({exc.msg})"]
    items = data.get("triples") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return [], [f"{doc_id}: the answer has no 'triples' list"]
    out = []
    for k, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(f"{doc_id}: triple {k} is not an object")
            continue
        rel = str(item.get("relation", "")).upper()
        head = allowed.get(normal_form(str(item.get("head", ""))))
        tail = allowed.get(normal_form(str(item.get("tail", ""))))
        if rel not in RELATIONS:
            problems.append(f"{doc_id}: triple {k} has relation {item.get('relation')!r}, not in the closed set")
        elif head is None or tail is None:
            problems.append(f"{doc_id}: triple {k} names a concept not mentioned in the passage: "
                            f"{item.get('head')!r} / {item.get('tail')!r}")
        elif head == tail:
            problems.append(f"{doc_id}: triple {k} relates {head} to itself")
        else:
            out.append(Triple(head, rel, tail, 0.7, "llm", [doc_id], text.strip()))
    return out, problems


def llm_extract(doc_id: str, text: str, mentioned: list[Concept], complete: Completer) -> list[Triple]:
    """Triples the model states for one passage (at least two concepts must be mentioned)."""
    if len(mentioned) < 2:
        return []
    allowed: dict[str, str] = {}
    for c in mentioned:
        for form in (c.id, c.name, *c.aliases):
            allowed[normal_form(form)] = c.id
    triples, problems = parse_triples(complete(build_prompt(text, mentioned)), allowed, doc_id, text)
    for p in problems:
        log.warning("LLM extraction: %s", p)
    return triples


class OpenAICompleter:
    """chat.completions with a JSON-schema response format; base URL, key and model from flags or env."""

    def __init__(self, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 60.0):
        from openai import OpenAI

        self.model = model or os.environ.get("STUDYLLAMA_EXTRACT_MODEL", "gpt-4o-mini")
        self.client = OpenAI(base_url=base_url or os.environ.get("OPENAI_BASE_URL"),
                             api_key=api_key or os.environ.get("OPENAI_API_KEY", "not-needed"), timeout=timeout,
                             max_retries=3)

    def __call__(self, prompt: str) -> str:
        resp = self.client.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": prompt}],
            temperature=0,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "triples", "schema": TRIPLES_SCHEMA, "strict": True}},
        )
        return resp.choices[0].message.content or ""
