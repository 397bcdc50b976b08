from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa_service.cli import main
from qa_service.config import (
    GROUPS,
    TABLE_END,
    TABLE_START,
    ConfigError,
    Settings,
    readme_with_table,
    settings_markdown,
    variables,
)

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_table_is_the_generated_one() -> None:
    readme = README.read_text(encoding="utf-8")
    assert readme_with_table(readme) == readme, "run: qa settings --readme README.md"


def test_every_setting_has_a_group_and_help() -> None:
    for f in dataclasses.fields(Settings):
        assert f.metadata["group"] in GROUPS, f.name
        assert len(f.metadata["help"]) > 10, f.name


def test_every_variable_is_in_the_table_once() -> None:
    table = settings_markdown()
    names = [v.env for v in variables()]
    assert len(names) == len(set(names)) == len(dataclasses.fields(Settings)) + 1
    for name in names:
        assert table.count(f"| `{name}` |") == 1, name


def test_the_groups_come_in_order() -> None:
    groups = [v.group for v in variables()]
    assert groups == sorted(groups, key=list(GROUPS).index)
    assert set(groups) == set(GROUPS)


@pytest.mark.parametrize(
    ("readme", "changed"),
    [
        (f"intro\n{TABLE_START}\nold rows\n{TABLE_END}\nafter\n", True),
        (f"intro\n{TABLE_START}\n{settings_markdown()}{TABLE_END}\nafter\n", False),
    ],
)
def test_the_table_is_replaced_between_its_markers(readme: str, changed: bool) -> None:
    new = readme_with_table(readme)
    assert (new != readme) is changed
    assert new.startswith(f"intro\n{TABLE_START}\n**Ingestion**")
    assert new.endswith(f"{TABLE_END}\nafter\n")


def test_a_readme_without_markers_is_refused() -> None:
    with pytest.raises(ConfigError, match="no generated settings table"):
        readme_with_table("no table here")


def test_qa_settings_prints_the_markdown_and_rewrites_a_readme(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(main, ["settings", "--markdown"])
    assert printed.exit_code == 0
    assert printed.output == settings_markdown()
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{TABLE_START}\n{TABLE_END}\n", encoding="utf-8")
    wrote = runner.invoke(main, ["settings", "--readme", str(readme)])
    assert wrote.exit_code == 0, wrote.output
    assert (
        readme.read_text(encoding="utf-8")
        == f"# x\n{TABLE_START}\n{settings_markdown()}{TABLE_END}\n"
    )
