"""Model loading (bundled SmolLM2, HF id, local path, GGUF), 4-bit NF4, LoRA, generation, graph modules.

Modules here take tensors and configs; they do no dataset I/O.
"""
