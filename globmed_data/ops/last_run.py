"""What `globmed run` used, remembered for the read commands: after `globmed run -c X`,
`globmed status` (and quarantine, quality, versions) read the warehouse that run wrote, not the
default path. Stored in .globmed/last-run.json under the working directory, as the default
warehouse is."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

RECORD = Path(".globmed") / "last-run.json"


def remember(warehouse: Path, config: Path) -> None:
    """Best effort: a read-only working directory only loses the convenience."""
    data = {
        "warehouse": str(warehouse.resolve()),
        "config": str(config.resolve()),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        tmp = RECORD.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(RECORD)
    except OSError:
        pass


def recall() -> Path | None:
    """The last run's warehouse, if it still exists."""
    try:
        path = Path(json.loads(RECORD.read_text(encoding="utf-8"))["warehouse"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if path.exists() else None
