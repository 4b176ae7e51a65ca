"""JudgeConfig: who judges the answers (G-Eval) and how. Nested in EvalConfig as the `--judge.*` flags of
`evaluation.run`; `python -m evaluation.judge` takes its endpoint fields as flags of their own."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from evaluation.geval.prompts import METHODS, PROMPTS

KINDS = ("openai", "local")
QUANTIZATIONS = ("nf4", "none")


def _split(values) -> list[str]:
    """["a,b", "c"] -> ["a", "b", "c"] ("a,b" and "a b" mean the same, also from a preset)."""
    values = [values] if isinstance(values, str) else values
    return [v.strip() for x in values for v in str(x).split(",") if v.strip()]


@dataclass
class JudgeConfig:
    """Who judges the answers (G-Eval) and how: `evaluation.run`'s `--judge.*` flags, `python -m evaluation.judge`'s
    flags. The API key is not a field: it comes from $OPENAI_API_KEY, so it can never reach a results file."""

    kind: str | None = None
    """None: no G-Eval; "openai": any OpenAI-compatible chat-completions endpoint (model or $STUDYLLAMA_JUDGE_MODEL,
    base_url or $OPENAI_BASE_URL, key from $OPENAI_API_KEY); "local": a causal LM loaded here (model, default the
    run's base model without adapter), probabilities read from its logits."""
    model: str | None = None
    """openai: the model name the endpoint knows (default $STUDYLLAMA_JUDGE_MODEL). local: any model spec model.load
    accepts (bundled, an HF id in the local cache, a folder, a .gguf); default the run's base model (bundled for a
    plain-only evaluation)."""
    base_url: str | None = None
    """openai only: endpoint base URL, e.g. http://127.0.0.1:8000/v1 (`python -m evaluation.serve`); default
    $OPENAI_BASE_URL, else OpenAI's."""
    prompts: list[str] = field(default_factory=lambda: list(PROMPTS))
    """G-Eval prompts: study_v1 (the study's first), study_v2 (its rubric prompt), reference (judged against the
    reference answer)."""
    methods: list[str] = field(default_factory=lambda: ["probability"])
    """Scoring: probability (the G-Eval paper: sum p(s) * s) and/or sampling (the study: mean of sampled scores)."""
    sanity: int = 30
    """evaluation.run: planted pairs for the judge sanity check (reference answer vs an answer shuffled from another
    question), drawn from the eval split; 0 switches the check off (the report then says the scores are unvalidated)."""
    samples: int = 10
    """Samples per item for the sampling method (the study: 10)."""
    quantization: str | None = None
    """local only: "nf4" or "none"; default the run's setting for the run's base model, "none" for --judge.model."""
    concurrency: int = 4
    """openai only: requests in flight at once (a local judge runs one at a time)."""
    max_attempts: int = 6
    """openai only: attempts per request (retries with backoff on 429, 5xx, timeouts) before the item is recorded
    as failed (1 = no retry)."""
    backoff_base: float = 1.0
    """openai only: the first retry waits about this many seconds; each further retry doubles it (with jitter)."""
    backoff_max: float = 60.0
    """openai only: longest wait between attempts, in seconds."""
    timeout: float = 60.0
    """openai only: seconds before one request counts as timed out (and is retried)."""
    prob_max_tokens: int = 3
    """openai only: tokens generated for the probability method (1-3); the first one whose alternatives hold a
    score is used."""
    top_logprobs: int = 5
    """openai only: alternatives per token for the probability method (1-20; the paper: 5)."""
    sample_temperature: float = 2.0
    """openai only: temperature for the sampling method (the study: 2; a local judge always uses the study's)."""
    sample_top_p: float = 1.0
    """openai only: top_p for the sampling method (the study: 1)."""
    sample_max_tokens: int = 5
    """openai only: tokens per sample for the sampling method."""
    message_role: str = "user"
    """openai only: role of the message that carries the G-Eval prompt (user, or system as the G-Eval code sent it)."""
    price_prompt_per_1k: float = 0.0
    """openai only: price of 1000 prompt tokens, for the cost line of the report."""
    price_completion_per_1k: float = 0.0
    """openai only: price of 1000 completion tokens."""
    cache_dir: str | None = None
    """Folder of the judgement cache (a rerun asks only what is missing or failed); default <out_dir>/geval_cache in
    evaluation.run, $STUDYLLAMA_CACHE/geval (~/.cache/studyllama/geval) in evaluation.judge."""

    def __post_init__(self) -> None:
        self.prompts, self.methods = _split(self.prompts), _split(self.methods)
        problems = []
        if self.kind is not None and self.kind not in KINDS:
            problems.append(f"kind must be one of {', '.join(KINDS)} or None, got {self.kind!r}")
        if not self.prompts or any(p not in PROMPTS for p in self.prompts):
            problems.append(f"prompts must name one or more of {', '.join(PROMPTS)}; got {self.prompts}")
        if not self.methods or any(m not in METHODS for m in self.methods):
            problems.append(f"methods must name one or more of {', '.join(METHODS)}; got {self.methods}")
        if self.sanity < 0 or self.sanity == 1:
            problems.append(f"sanity must be 0 (off) or at least 2 planted pairs, got {self.sanity}")
        if self.concurrency < 1 or self.max_attempts < 1 or self.samples < 1:
            problems.append("concurrency, max_attempts and samples must be at least 1")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.timeout <= 0:
            problems.append("backoff_base and backoff_max must be >= 0 and timeout > 0")
        if not 1 <= self.prob_max_tokens <= 3:
            problems.append(f"prob_max_tokens must be 1, 2 or 3, got {self.prob_max_tokens}")
        if not 1 <= self.top_logprobs <= 20:
            problems.append(f"top_logprobs must be in 1..20, got {self.top_logprobs}")
        if not 0 <= self.sample_temperature <= 2 or not 0 < self.sample_top_p <= 1 or self.sample_max_tokens < 1:
            problems.append("sample_temperature must be in [0, 2], sample_top_p in (0, 1], sample_max_tokens >= 1")
        if self.message_role not in ("user", "system"):
            problems.append(f"message_role must be user or system, got {self.message_role!r}")
        if self.price_prompt_per_1k < 0 or self.price_completion_per_1k < 0:
            problems.append("prices must be >= 0")
        if self.quantization is not None and self.quantization not in QUANTIZATIONS:
            problems.append(f"quantization must be nf4 or none, got {self.quantization!r}")
        given = [n for n in ("model", "base_url", "quantization", "cache_dir") if getattr(self, n) is not None]
        if self.kind is None and given:
            problems.append(f"{', '.join(given)} given without a judge (pass --judge.kind openai or --judge.kind "
                            "local)")
        if self.kind == "local" and self.base_url is not None:
            problems.append("base_url is for --judge.kind openai; a local judge loads --judge.model here (to judge "
                            "with a served model, use --judge.kind openai --judge.base_url URL)")
        if self.kind == "openai" and self.quantization is not None:
            problems.append("quantization is for --judge.kind local; an openai judge is loaded by its server")
        if problems:
            raise ValueError("Invalid JudgeConfig:\n  - " + "\n  - ".join(problems))

    def public_dict(self) -> dict:
        """The settings for a results file (there is no key among them; a base URL loses any credentials)."""
        from data.secrets import mask_url

        d = asdict(self)
        d["base_url"] = mask_url(self.base_url)
        return d
