"""globmed-data: build a versioned, multilingual medical dataset.

The engine (this package) is plain, batch-oriented library code with no Prefect imports;
`flows/` composes it into Prefect flows.
"""

import os
import sys

__version__ = "0.1.0"

# Polars' allocator (its own jemalloc) keeps freed pages for seconds, so a stage's peak stacked on
# what the stage before it had let go; returned at once, the 8x run's peak RSS fell by ~0.25 GiB
# with no measured cost in time (docs/scaling-history.md). jemalloc reads this when polars first
# allocates, so it is set before any module here imports polars; a value already set wins.
if "polars" not in sys.modules:
    os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
