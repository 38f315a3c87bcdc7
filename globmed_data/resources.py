"""Files that ship beside the code: the top-level warehouse/ and schemas/ folders.

In a checkout (or editable install) they are read from the repository; a wheel carries
them as globmed_data/_bundled/ (see [tool.hatch...force-include] in pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(*parts: str) -> Path:
    for candidate in (_PACKAGE.parent.joinpath(*parts), _PACKAGE.joinpath("_bundled", *parts)):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"{'/'.join(parts)} not found beside globmed_data (broken installation?)")
