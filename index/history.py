"""Which template ids an index folder has ever held: outcomes may name a template of any of its
versions (a prompt built just before a swap), and only ids of none of them are refused."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from thoughtbank.index.artifact import (
    PRUNED_IDS_FILE,
    list_versions,
    pruned_template_ids,
    version_template_ids,
)


class HeldTemplateIds:
    """The ids of every version seen so far, plus those of pruned ones; a version is read once."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = Path(index_dir)
        self._ids: set[str] = set()
        self._versions: set[str] = set()
        self._pruned_size = -1
        self._lock = threading.Lock()

    @property
    def used(self) -> bool:
        """Whether any lookup has read the folder yet."""
        return bool(self._versions)

    def unknown(self, template_ids: Iterable[str]) -> list[str]:
        """Of ``template_ids``, those no version has held (the folder is looked at again only
        when an id is not yet known)."""
        missing = [t for t in template_ids if t not in self._ids]
        if missing:
            self.refresh()
            missing = [t for t in missing if t not in self._ids]
        return missing

    def refresh(self) -> None:
        """Read the versions that appeared and the pruned ids, if they grew, since last time."""
        with self._lock:
            for version in set(list_versions(self.index_dir)) - self._versions:
                self._ids |= version_template_ids(self.index_dir, version)
                self._versions.add(version)
            pruned = self.index_dir / PRUNED_IDS_FILE
            size = pruned.stat().st_size if pruned.exists() else 0
            if size != self._pruned_size:
                self._ids |= pruned_template_ids(self.index_dir)
                self._pruned_size = size
