"""The diagrams in notebooks/images/ are what tools/diagrams.py draws, and each
is an SVG image that GitHub and JupyterLab can show on its own."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from tools import diagrams

SVG = "{http://www.w3.org/2000/svg}"
FILES = sorted(diagrams.rendered())


def test_every_diagram_file_is_current() -> None:
    stale = [str(path.relative_to(diagrams.ROOT)) for path in diagrams.stale()]
    assert not stale, f"out of date: {stale}; run python tools/diagrams.py"


def test_check_exits_1_on_a_stale_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(diagrams, "IMAGES", tmp_path)
    assert diagrams.main(["--check"]) == 1  # none written yet
    assert diagrams.main([]) == 0
    assert diagrams.main(["--check"]) == 0
    first = tmp_path / "job-lifecycle.svg"
    first.write_text(first.read_text().replace("Queue", "Queues", 1))
    assert diagrams.main(["--check"]) == 1


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_diagram_is_a_titled_svg(path) -> None:
    root = ET.parse(path).getroot()  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    width, height = int(root.get("width")), int(root.get("height"))
    assert 700 <= width <= 900 and 300 <= height <= 800, (width, height)
    assert root.get("viewBox") == f"0 0 {width} {height}"
    title = root.find(f"{SVG}title")
    assert title is not None and title.text and title.text.strip()
    assert root.find(f"{SVG}desc") is not None
    text = path.read_text(encoding="utf-8")
    # Self-contained: nothing to fetch (no images, fonts or style sheets from elsewhere).
    for outside in ("href=", "@import", "url(", "<image", "<script", "<foreignObject"):
        assert outside not in text, f"{path.name} refers to something outside it: {outside}"


def test_every_image_a_lesson_shows_exists() -> None:
    """Each `![...](images/<name>)` in a lesson's markdown names a file that exists
    (and a diagram this script draws, if it is an SVG)."""
    drawn = {path.name for path in FILES}
    missing = []
    for notebook in sorted((diagrams.ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for target in re.findall(r"!\[[^\]]*\]\((images/[^)\s]+)\)", "".join(cell["source"])):
                name = target.split("/", 1)[1]
                exists = (notebook.parent / target).exists()
                if not exists or (name.endswith(".svg") and name not in drawn):
                    missing.append(f"{notebook.name}: {target}")
    assert not missing, f"images shown but not drawn by tools/diagrams.py: {missing}"
