"""Prompt construction: the study's baseline prompt, the model's chat template, stop strings, graph evidence."""
