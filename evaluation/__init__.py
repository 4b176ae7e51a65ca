"""Generate answers per system, score them (ROUGE, BLEU, degeneration, ...) and report."""
