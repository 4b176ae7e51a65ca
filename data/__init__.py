"""Interview QA corpus: loading, validation, de-duplication, curation and splitting.

The lowest layer of the pipeline: it knows nothing of graphs, models or training.
"""
