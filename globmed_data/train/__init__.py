"""The training flow (GlobMed-LLMs): fine-tune a model on a dataset version (docs/training.md)."""
