"""Schema files: format, generation, staleness checks, and the repository's files up to date."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from trendflow.cli import main
from trendflow.contracts.arrays import ArraySpec
from trendflow.contracts.manifest import manifest_json_schema
from trendflow.contracts.schemas import load_component_schema, repo_schemas_dir
from trendflow.errors import ContractViolation
from trendflow.pipeline.components.schemas import (
    check_schema_files,
    component_schema_document,
    generate_schema_files,
)

from .conftest import TEST_COMPONENTS, Brightness, TitleStats


def test_component_document_has_the_fixed_format() -> None:
    doc = component_schema_document(Brightness)
    assert list(doc) == [
        "$schema",
        "$id",
        "title",
        "component",
        "schema_version",
        "producer_version",
        "tier",
        "frame_based",
        "sampling",
        "description",
        "keys",
        "type",
    ]
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == "trendflow/components/brightness/v2"
    assert (doc["title"], doc["component"], doc["schema_version"]) == (
        "brightness",
        "brightness",
        2,
    )
    assert (doc["producer_version"], doc["tier"], doc["frame_based"]) == ("1.1.0", 1, True)
    assert doc["sampling"] == "2 fps"
    assert doc["description"] == "Mean brightness per sampled frame."
    assert doc["keys"]["histogram"] == {
        "dtype": "int32",
        "shape": ["n_frames", 16],
        "description": "Luma histogram.",
    }
    assert doc["keys"]["timestamps_s"]["unit"] == "s"
    assert doc["type"] == "object"
    meta_doc = component_schema_document(TitleStats)
    assert (meta_doc["frame_based"], meta_doc["sampling"], meta_doc["tier"]) == (False, None, 0)


def _variant(**attrs: Any) -> type[Brightness]:
    return type("Variant", (Brightness,), attrs)


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (
            _variant(outputs=classmethod(lambda cls: {"x": ArraySpec("float32", (), "x")})),
            "need 'frame_indices'",
        ),
        (
            _variant(
                outputs=classmethod(
                    lambda cls: {**Brightness.outputs(), "meta": ArraySpec("<U8", (), "m")}
                )
            ),
            "reserved",
        ),
        (
            _variant(
                outputs=classmethod(
                    lambda cls: {**Brightness.outputs(), "o": ArraySpec("object", (), "o")}
                )
            ),
            "object dtype",
        ),
        (_variant(NAME="Bad Name"), "valid canonical name"),
        (_variant(TIER=2), "TIER"),
    ],
)
def test_components_that_break_the_contract_get_no_schema(cls: type, message: str) -> None:
    with pytest.raises(ContractViolation, match=message):
        component_schema_document(cls)


def test_load_returns_the_declared_specs(schemas_dir: Path) -> None:
    schema = load_component_schema("brightness", schemas_dir)
    assert schema.specs == Brightness.outputs()
    assert (schema.schema_version, schema.producer_version, schema.frame_based) == (
        2,
        "1.1.0",
        True,
    )
    with pytest.raises(ContractViolation, match="does not exist"):
        load_component_schema("faces", schemas_dir)
    with pytest.raises(ContractViolation, match="invalid component name"):
        load_component_schema("../manifest", schemas_dir)


def test_a_schema_file_that_lies_about_itself_is_refused(schemas_dir: Path) -> None:
    path = schemas_dir / "components" / "brightness.schema.json"
    doc = json.loads(path.read_text())
    doc["schema_version"] = 3
    path.write_text(json.dumps(doc))
    with pytest.raises(ContractViolation, match=r"\$id"):
        load_component_schema("brightness", schemas_dir)
    path.write_text("{not json")
    with pytest.raises(ContractViolation, match="cannot read"):
        load_component_schema("brightness", schemas_dir)


def test_check_names_missing_stale_and_orphaned_files(schemas_dir: Path) -> None:
    assert check_schema_files(schemas_dir, TEST_COMPONENTS) == []
    comp_dir = schemas_dir / "components"
    (comp_dir / "title_stats.schema.json").unlink()
    (comp_dir / "brightness.schema.json").write_text("{}\n")
    (comp_dir / "retired.schema.json").write_text("{}\n")
    (schemas_dir / "manifest.schema.json").write_text("{}\n")
    problems = check_schema_files(schemas_dir, TEST_COMPONENTS)
    assert len(problems) == 4
    assert any("title_stats.schema.json: missing" in p for p in problems)
    assert any("brightness.schema.json: out of date" in p for p in problems)
    assert any("manifest.schema.json: out of date" in p for p in problems)
    assert any("retired.schema.json: no registered component" in p for p in problems)
    generate_schema_files(schemas_dir, TEST_COMPONENTS)
    assert check_schema_files(schemas_dir, TEST_COMPONENTS) == []
    assert not (comp_dir / "retired.schema.json").exists()


def test_a_new_schema_version_makes_the_file_stale(schemas_dir: Path) -> None:
    bumped = type("Brightness", (Brightness,), {"SCHEMA_VERSION": 3})
    problems = check_schema_files(schemas_dir, {**TEST_COMPONENTS, "brightness": bumped})
    assert problems == [
        f"{schemas_dir}/SCHEMA.md: out of date with the code (run `trendflow schemas generate`)",
        f"{schemas_dir}/components/brightness.schema.json: out of date with the "
        "code (run `trendflow schemas generate`)",
    ]


def test_repository_manifest_schema_matches_the_model() -> None:
    path = repo_schemas_dir() / "manifest.schema.json"
    assert path.is_file(), (
        "schemas/manifest.schema.json is missing: run `trendflow schemas generate`"
    )
    assert json.loads(path.read_text(encoding="utf-8")) == manifest_json_schema(), (
        "schemas/manifest.schema.json is out of date: run `trendflow schemas generate`"
    )


def test_repository_schema_files_match_the_registered_components() -> None:
    assert check_schema_files(repo_schemas_dir()) == []


def test_cli_generate_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "schemas"
    assert main(["schemas", "check", "--dir", str(target)]) == 1
    assert "manifest.schema.json: missing" in capsys.readouterr().out
    assert main(["schemas", "generate", "--dir", str(target)]) == 0
    assert str(target / "manifest.schema.json") in capsys.readouterr().out
    assert main(["schemas", "check", "--dir", str(target)]) == 0
    assert capsys.readouterr().out == ""
