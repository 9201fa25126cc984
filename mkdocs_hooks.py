"""mkdocs hook: leave out of the nav the pages that are announced but not written yet.

Only the pages named in ``ANNOUNCED`` may be missing; any other nav entry without its file still
fails the strict build. Once every announced page exists this hook changes nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.announced")

#: Pages other work adds; listed in the nav of mkdocs.yml already.
ANNOUNCED = frozenset({"explore.md", "openapi.md", "contract-file.md", "webhooks.md"})


def _prune(nav: list[Any], docs: Path) -> list[Any]:
    kept: list[Any] = []
    for entry in nav:
        if isinstance(entry, dict):
            (title, target), *_ = entry.items()
            if isinstance(target, list):
                children = _prune(target, docs)
                if children:
                    kept.append({title: children})
                continue
            if target in ANNOUNCED and not (docs / target).exists():
                log.info("nav: %s is announced but not written yet; left out", target)
                continue
        kept.append(entry)
    return kept


def on_config(config: Any) -> Any:
    config["nav"] = _prune(config["nav"], Path(config["docs_dir"]))
    return config
