"""globmed-data: build a versioned, multilingual medical dataset.

The engine (this package) is plain, batch-oriented library code with no Prefect imports;
`flows/` composes it into Prefect flows.
"""

__version__ = "0.1.0"
