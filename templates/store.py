"""Templates JSONL: the artifact between the mining and the index stages."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from thoughtbank.templates.schema import ThoughtTemplate


def read_templates(path: Path) -> Iterator[ThoughtTemplate]:
    """Stream templates from a JSONL file; a bad line is an error naming file and line."""
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                yield parse_template_line(line, path, number)


def parse_template_line(line: str | bytes, path: Path, number: int) -> ThoughtTemplate:
    """The template on line ``number`` of ``path``; a bad one is an error naming both."""
    try:
        return ThoughtTemplate.from_json(line.decode() if isinstance(line, bytes) else line)
    except (ValueError, KeyError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"{path}:{number}: not a thought template: {exc}") from exc


def write_templates(path: Path, templates: Iterable[ThoughtTemplate]) -> int:
    """Write atomically (temp file, fsync, rename) so readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for template in templates:
            handle.write(template.to_json() + "\n")
            count += 1
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    return count
