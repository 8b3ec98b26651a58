"""spec/README.md is exactly what spec/render.py makes of spec/asgi.json, and covers all of it."""

from __future__ import annotations

import pytest

from spec.render import PAGE, load, main, render

SPEC = load()


@pytest.fixture(scope="module")
def page() -> str:
    return PAGE.read_text(encoding="utf-8")


def test_the_page_is_current(page: str) -> None:
    assert page == render(), "spec/README.md is stale: run python -m spec.render"


def test_check_mode_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0
    assert capsys.readouterr().err == ""


def test_every_message_has_a_section(page: str) -> None:
    for kind in SPEC.messages:
        assert f"#### `{kind}`" in page, kind


def test_every_reading_is_in_the_readings_table(page: str) -> None:
    readings = page[page.index("## Readings") :]
    for reading in SPEC.readings:
        assert f'<a id="{reading.id}"></a>`{reading.id}`' in readings, reading.id


def test_every_machine_is_drawn(page: str) -> None:
    for name, machine in SPEC.ordering.items():
        section = page[page.index(f"\n### `{name}`\n") :]
        diagram = section[section.index("```mermaid") : section.index("```\n", 10)]
        assert diagram.startswith("```mermaid\nstateDiagram-v2\n")
        assert f"[*] --> {machine.initial}" in diagram
        assert diagram.count(" --> ") == len(machine.transitions) + 1 + len(machine.final)


def test_the_page_links_the_driver_contract(page: str) -> None:
    assert "(driver-contract.md)" in page
