"""Regenerate the Python gRPC code from ``protos/thoughtbank/v1/*.proto``.

grpcio-tools writes absolute imports (``from thoughtbank.v1 import ..._pb2``) that would not
resolve inside the installed package (``thoughtbank.protos.thoughtbank.v1``), so they are
rewritten to relative imports. ``tests/test_protos.py`` runs this into a temporary folder and
fails when the committed files differ.

Usage: ``python protos/generate.py [OUT_DIR]`` (default: next to the .proto files).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PROTO_FILES = sorted(PROTO_ROOT.glob("thoughtbank/v1/*.proto"))
_ABSOLUTE_IMPORT = re.compile(r"^from thoughtbank\.v1 import (\w+_pb2)", re.MULTILINE)


def generate(out_root: Path) -> list[Path]:
    """Run protoc into ``out_root`` and return the generated Python files."""
    from grpc_tools import protoc

    out_root.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *map(str, PROTO_FILES),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(args)}")
    generated = sorted((out_root / "thoughtbank" / "v1").glob("*_pb2*.py*"))
    for path in generated:
        path.write_text(_ABSOLUTE_IMPORT.sub(r"from . import \1", path.read_text()))
    return generated


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else PROTO_ROOT
    for path in generate(target):
        print(path)
