"""The README stays a front door, and every relative link in README.md, docs/*.md and the
studies' write-ups (fits/*/README.md) reaches an existing file, and a heading where it names one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 250
# [text](target) or ![alt](target), with an optional "title"; the target has no spaces
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _pages(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md")), *sorted((root / "fits").glob("*/README.md"))]


def _prose(text: str) -> str:
    """The text outside fenced code blocks and inline code, where a link is a link."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    out = set()
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken_links(root: Path) -> list[str]:
    """'page: target (why)' for each relative link of the pages that does not resolve."""
    bad = []
    for page in _pages(root):
        if not page.exists():
            continue
        for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(root)}: {target}"
            if not dest.exists():
                bad.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                bad.append(f"{where} (no heading with that anchor)")
    return bad


def test_every_relative_link_resolves():
    assert broken_links(ROOT) == []


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/ (at most {README_MAX_LINES})"


def test_the_link_check_finds_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "fits" / "s").mkdir(parents=True)
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## The `make study` part\n")
    (tmp_path / "fits" / "s" / "README.md").write_text("[ok](../../docs/a.md#the-make-study-part)\n")
    (tmp_path / "README.md").write_text(
        "[ok](docs/a.md) [gone](docs/b.md) [bad](docs/a.md#nowhere) [web](https://example.org/x)\n"
        "`[code](not/a/link.md)`\n```\n[fenced](not/a/link.md)\n```\n")
    assert broken_links(tmp_path) == ["README.md: docs/b.md (no such file)",
                                      "README.md: docs/a.md#nowhere (no heading with that anchor)"]


@pytest.mark.parametrize("heading, anchor", [("The quickstart (`make study`)", "the-quickstart-make-study"),
                                             ("`results.csv`", "resultscsv"),
                                             ("Transfer beyond n-grams (world v2)", "transfer-beyond-n-grams-world-v2")])
def test_anchors_follow_github(tmp_path, heading, anchor):
    page = tmp_path / "p.md"
    page.write_text(f"# {heading}\n")
    assert anchor in _anchors(page)


def test_the_readme_example_names_the_lines_answer_md_has(tmp_path):
    """The README describes answer.md by its line labels ("**What ran:**", "**Not found:**", "**Files:**") and
    phrases; a rendered answer (test_answer's world-v3 study) has each of them."""
    import warnings

    from test_answer import _table

    from scaling.reports.answer import write_answer
    from scaling.reports.fit import fit_table

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = readme[readme.index("## One example"):readme.index("## Findings")]
    prose = " ".join(example.split()).lower()
    labels = re.findall(r"^- \*\*([^*]+?):\*\*", example, flags=re.M)
    assert labels == ["What ran", "In plain words", "Not found", "Files"]
    df = _table()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lines = write_answer(fit_table(df), df, tmp_path)
    for label in labels:
        assert any(line.startswith(f"{label}: ") or line == f"## {label}" for line in lines), label
    matched = next(line for line in lines if line.startswith("- **matched**"))
    for phrase in ("a counter does too", "strongest counter", "readout", "change", "halving dose"):
        assert phrase in prose and phrase in matched.lower(), phrase
    assert "answer.md" in example and (tmp_path / "answer.md").exists()
