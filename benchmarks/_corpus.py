"""Helpers shared by the benchmarks: a collected shared-real warehouse, peak memory, TICO-19,
scratch folders."""

from __future__ import annotations

import atexit
import json
import resource
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from globmed_data.config import load_config  # noqa: E402
from globmed_data.sources.collect import collect_source  # noqa: E402
from globmed_data.translate.parallel import TICO_CODES  # noqa: E402
from globmed_data.warehouse import Warehouse  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def scratch(prefix: str) -> Path:
    """A temporary folder removed when the benchmark exits, however it exits (warehouses left
    behind by benchmark runs filled this machine's disk)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def collected(path: Path, config: str = "configs/shared-real.yaml") -> Warehouse:
    """A warehouse with the config's sources collected (reused when already there)."""
    loaded = load_config(ROOT / config)
    wh = Warehouse(path)
    if wh.query("SELECT count(*) FROM entries")[0][0] == 0:
        run_id = uuid.uuid4().hex
        wh.start_run(run_id, config_hash=loaded.config.config_hash(), config_path=str(loaded.path))
        for s in loaded.config.sources:
            collect_source(wh, loaded, s, run_id)
        wh.finish_run(run_id, "succeeded", {})
    return wh


def tico_pairs() -> Iterator[tuple[str, str, str]]:
    """(target language, English sentence, target sentence) for every TICO-19 pair."""
    for path in sorted((SHARED / "TICO-19").glob("tico19_en-*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                yield TICO_CODES.get(rec["tgt_lang"], rec["tgt_lang"]), rec["en"], rec["tgt"]
