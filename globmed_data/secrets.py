"""Credentials (Hub tokens, API keys): from the environment, else a Prefect Secret block.

They are never logged; `redact` takes them out of any message that is stored or shown.
"""

from __future__ import annotations

import os


def credential(env_var: str, secret_block: str | None = None) -> str | None:
    value = os.environ.get(env_var)
    if value:
        return value
    if secret_block:
        from prefect.blocks.system import Secret

        return str(Secret.load(secret_block).get())
    return None


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text
