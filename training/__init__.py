"""Supervised fine-tuning (QLoRA, answer-only loss) and the `python -m training.run` entry point."""
