"""The cost-model spec lives in the repo: every citation of it names an anchor that exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cost-model.md"
SCANNED = ("src", "conf", "docs", "tests", "bench", "launch", "README.md")
CITATION = re.compile(r"cost-model\.md#([A-Za-z0-9_-]+)")
OUTSIDE_SPEC = "crossbar" + ".md"  # the spec file this project used to cite from outside the repo


def _files() -> list[Path]:
    found: list[Path] = []
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += [
                p
                for p in path.rglob("*")
                if p.suffix in {".py", ".md", ".yaml", ".sh", ".txt"}
                and "__pycache__" not in p.parts
            ]
    return found


def _anchors() -> set[str]:
    text = DOC.read_text()
    explicit = set(re.findall(r'<a id="([^"]+)"></a>', text))
    slugs = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).strip().replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", text, re.M)
    }
    return explicit | slugs


def test_every_citation_names_an_existing_anchor() -> None:
    anchors = _anchors()
    cited: dict[str, list[str]] = {}
    for path in _files():
        for anchor in CITATION.findall(path.read_text(errors="ignore")):
            cited.setdefault(anchor, []).append(str(path.relative_to(ROOT)))
    for anchor in re.findall(r"\]\(#([A-Za-z0-9_-]+)\)", DOC.read_text()):  # links inside the page
        cited.setdefault(anchor, []).append("docs/cost-model.md")
    assert len(cited) >= 10, "the code should cite the spec's sections"
    missing = {anchor: files for anchor, files in cited.items() if anchor not in anchors}
    assert not missing, f"citations of anchors that docs/cost-model.md does not define: {missing}"


def test_nothing_cites_the_old_spec_outside_the_repo() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in _files()
        if OUTSIDE_SPEC in path.read_text(errors="ignore")
    ]
    assert offenders == []
