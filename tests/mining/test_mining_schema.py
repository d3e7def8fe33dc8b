"""ThoughtTemplate's JSON form: every field written, read back unchanged."""

from __future__ import annotations

import dataclasses
import json

from thoughtbank.templates import SourceResponse, TemplateFields, ThoughtTemplate


def _full_template() -> ThoughtTemplate:
    return ThoughtTemplate(
        id="abc123",
        task="gsm8k",
        text="Task: add",
        source_query="What is 2 + 3?",
        source_models=("m1", "m2"),
        source_query_ids=("q1",),
        sources=(SourceResponse("m1", 1.0, 0.002, 0.9, "q1"), SourceResponse("m2", 1.0)),
        fields=TemplateFields("add numbers", ("read", "add"), "#### <number>"),
        pitfalls="do not subtract",
        distiller="extractive",
        distiller_version="2",
        created_at="2026-11-28T00:00:00+00:00",
        merged_queries=("What is 3 + 2?",),
        flags=("leakage-suspected",),
    )


def test_to_dict_has_every_field_and_round_trips() -> None:
    template = _full_template()
    data = json.loads(template.to_json())
    assert set(data) == {f.name for f in dataclasses.fields(ThoughtTemplate)}
    assert data == json.loads(json.dumps(dataclasses.asdict(template)))
    assert ThoughtTemplate.from_json(template.to_json()) == template


def test_template_without_fields_round_trips() -> None:
    template = dataclasses.replace(_full_template(), fields=None, sources=())
    assert ThoughtTemplate.from_dict(template.to_dict()) == template
