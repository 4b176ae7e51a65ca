"""Prompt formats.

"study": the study's baseline prompt, verbatim, as plain text (what the study fed Llama-2-Chat).
"chat": the model's own chat template, with the study's instruction as the system message.

Training examples are built from the same functions, so the fine-tuned model sees at training time
exactly the prompt it gets at evaluation time, and every answer ends with the EOS token.
"""
from __future__ import annotations

from dataclasses import dataclass

STUDY_INSTRUCTION = (
    "You are applying for a job related to AI, and you can expect to encounter problems related to "
    "statistics, computer science, and artificial intelligence."
)
STUDY_TEMPLATE = STUDY_INSTRUCTION + "\n\n### Question:\n{eval_input}\n\n### Answer and Explanation:\n"

PROMPT_STYLES = ("study", "chat")

# Text that means the model has started a new turn of its own: the study's failure mode.
FOLLOW_UP_MARKERS = ("### Question", "### Answer", "\nQuestion:", "<|im_start|>", "[INST]")


@dataclass(frozen=True)
class PromptParts:
    text: str  # the prompt, to be tokenised as is
    add_special_tokens: bool  # whether the tokenizer should add BOS (False when the template already has it)


def study_prompt(question: str) -> str:
    return STUDY_TEMPLATE.format(eval_input=question.strip())


def build_prompt(question: str, tokenizer, style: str = "study", context: str | None = None) -> PromptParts:
    """The prompt for one question. `context` (graph evidence) goes before the question when given."""
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r}; expected one of {PROMPT_STYLES}")
    body = question.strip() if not context else f"{context.strip()}\n\nQuestion: {question.strip()}"
    if style == "study":
        return PromptParts(study_prompt(body), add_special_tokens=True)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("prompt style 'chat' needs a tokenizer with a chat template; use --prompt_style study")
    messages = [{"role": "system", "content": STUDY_INSTRUCTION}, {"role": "user", "content": body}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return PromptParts(text, add_special_tokens=False)


def stop_strings(style: str) -> list[str]:
    """Strings that end a generation besides EOS: a new question block or a new chat turn."""
    return ["### Question", "\n### "] if style == "study" else ["<|im_start|>", "[INST]", "### Question"]


def encode_prompt(parts: PromptParts, tokenizer) -> list[int]:
    return tokenizer(parts.text, add_special_tokens=parts.add_special_tokens)["input_ids"]


def encode_example(question: str, answer: str, tokenizer, style: str = "study", max_length: int = 2048,
                   context: str | None = None):
    """Token ids and labels for one training example: loss on the answer and its EOS only.

    Returns (input_ids, labels) or None when the prompt alone does not fit in max_length. A long
    answer is cut to fit but always keeps its final EOS, so the model learns to stop.
    """
    prompt_ids = encode_prompt(build_prompt(question, tokenizer, style, context), tokenizer)
    answer_ids = tokenizer(answer.strip(), add_special_tokens=False)["input_ids"]
    room = max_length - len(prompt_ids) - 1
    if room < 8:
        return None
    answer_ids = answer_ids[:room] + [tokenizer.eos_token_id]
    return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids
