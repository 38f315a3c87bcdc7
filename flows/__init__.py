"""Prefect flows: thin wrappers that compose the globmed_data engine into pipelines."""
