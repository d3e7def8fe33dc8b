"""The committed generated code must match the .proto (regenerated with the pinned grpcio-tools)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from conftest import REPO_ROOT


def _load_generator():
    spec = importlib.util.spec_from_file_location("generate", REPO_ROOT / "protos" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_not_stale(tmp_path: Path) -> None:
    generated = _load_generator().generate(tmp_path)
    committed_dir = REPO_ROOT / "protos" / "thoughtbank" / "v1"
    assert {p.name for p in generated} == {
        "thought_templates_pb2.py",
        "thought_templates_pb2.pyi",
        "thought_templates_pb2_grpc.py",
    }
    for path in generated:
        assert path.read_text() == (committed_dir / path.name).read_text(), (
            f"{path.name} is stale: run `make protos` and commit the result"
        )


def test_generated_code_imports_inside_the_package() -> None:
    from thoughtbank.protos import SERVICE_NAME, pb2

    assert SERVICE_NAME == "thoughtbank.v1.ThoughtTemplateService"
    assert pb2.RetrieveRequest.DESCRIPTOR.fields_by_name["k"].number == 2
