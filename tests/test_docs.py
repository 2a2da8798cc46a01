"""The README and docs/ as a link graph: every relative link and image resolves (to a file, and
for `#anchor` to a heading of it), every docs page is reachable from README.md, the README stays
short, and no line carries development history (commit hashes, issue numbers)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted([README, *DOCS.rglob("*.md")])
DOC_PAGES = sorted(DOCS.rglob("*.md"))
MAX_README_LINES = 250
HISTORY = re.compile(r"issue [0-9]|\b[0-9a-f]{7,40}\b", re.IGNORECASE)

FENCE = re.compile(r"^\s*(```|~~~)")
# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HTML_LINK = re.compile(r"""<(?:a|img)\s[^>]*?(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
INLINE_CODE = re.compile(r"`+[^`]*`+")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def _rel(path: Path) -> str:
    path = path.resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) outside fenced code blocks."""
    lines, in_fence = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            lines.append((number, line))
    return lines


def links(path: Path) -> list[tuple[int, str]]:
    """Every link target in the page's prose (not in code spans or fenced blocks)."""
    found = []
    for number, line in prose_lines(path):
        text = INLINE_CODE.sub("", line)
        for pattern in (INLINE_LINK, REFERENCE_DEF, HTML_LINK):
            found.extend((number, m.group(1)) for m in pattern.finditer(text))
    return found


def is_external(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)) or target.startswith("//")


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lowercase, punctuation but '-' and '_'
    removed, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in "-_ " or category[0] in "LN" or category == "Mn":
            kept.append(char)
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a page's headings; repeated headings get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for _, line in prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def resolve(page: Path, target: str) -> tuple[Path, str | None]:
    """The file a relative link points to and its anchor (None when it has none)."""
    target, _, fragment = target.partition("#")
    file = (page.parent / unquote(target)).resolve() if target else page
    return file, (unquote(fragment) if fragment else None)


def broken_links(page: Path) -> list[str]:
    problems = []
    for number, target in links(page):
        if is_external(target):
            continue
        file, fragment = resolve(page, target)
        where = f"{_rel(page)}:{number}: {target}"
        if not file.exists():
            problems.append(f"{where}: no such file")
        elif fragment is not None:
            if file.suffix != ".md":
                problems.append(f"{where}: an anchor into a file that is not Markdown")
            elif fragment not in anchors(file):
                problems.append(f"{where}: no heading #{fragment} in {_rel(file)}")
    return problems


def reachable_from(start: Path) -> set[Path]:
    """Markdown pages reachable from `start` by following relative links."""
    seen, todo = {start.resolve()}, [start.resolve()]
    while todo:
        page = todo.pop()
        for _, target in links(page):
            if is_external(target):
                continue
            file, _ = resolve(page, target)
            if file.suffix == ".md" and file.is_file() and file not in seen:
                seen.add(file)
                todo.append(file)
    return seen


def test_pages_found() -> None:
    assert README.is_file()
    assert DOC_PAGES, "docs/ holds no Markdown pages"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_relative_links_resolve(page: Path) -> None:
    problems = broken_links(page)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", DOC_PAGES, ids=_rel)
def test_docs_page_reachable_from_readme(page: Path) -> None:
    assert page.resolve() in reachable_from(README), f"{_rel(page)}: no link path from README.md"


def test_readme_is_short() -> None:
    count = len(README.read_text(encoding="utf-8").splitlines())
    assert count <= MAX_README_LINES, f"README.md has {count} lines (at most {MAX_README_LINES})"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_no_history(page: Path) -> None:
    hits = [
        f"{_rel(page)}:{number}: {line.strip()}"
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1)
        if HISTORY.search(line)
    ]
    assert not hits, "commit hashes or issue numbers belong in CHANGELOG.md:\n" + "\n".join(hits)


# -- the checker itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Truncated BPTT", "truncated-bptt"),
        (
            "The SimpleRNN baseline: `experiment=simplernn_baseline`",
            "the-simplernn-baseline-experimentsimplernn_baseline",
        ),
        ("Long-range memory on IMDB: cell x `max_len`", "long-range-memory-on-imdb-cell-x-max_len"),
        ("Results (real IMDB, this CPU)", "results-real-imdb-this-cpu"),
        ("`train.yaml`: top-level keys", "trainyaml-top-level-keys"),
    ],
)
def test_github_slug(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_checker_catches_broken_links(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## A section\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](other.md#a-section) [missing](nowhere.md) [bad anchor](other.md#no-such)\n"
        "![missing image](img/none.png) [self](#page) [own bad](#nope)\n"
        "[web](https://example.com/x.md) `[in code](nowhere.md)`\n\n"
        "```\n[in a fence](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    problems = broken_links(page)
    assert len(problems) == 4, problems
    for target in ("nowhere.md", "#no-such", "img/none.png", "#nope"):
        assert any(target in p for p in problems), (target, problems)


def test_history_pattern_catches_hashes_and_issue_numbers_but_not_results() -> None:
    # built from pieces, so that the repository's own history grep does not find them here
    assert HISTORY.search("fixed in " + "bcbb" + "135")
    assert HISTORY.search("see issue " + "7")
    assert not HISTORY.search("rnnlab 0.2.0, 2026-11-26: 88.65% (2,572,481 parameters)")


CONF = ROOT / "conf"
CONFIG_OPTIONS = sorted(p for p in CONF.rglob("*.yaml") if p.parent != CONF)


def _sections(page: str) -> dict[str, str]:
    """Heading line -> the text under it, for the page's ## and ### headings."""
    parts = re.split(r"^(#{2,3} .*)$", page, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def header_comment(option: Path) -> str:
    """The comment an option file opens with (Hydra's `# @package` line aside): what it is."""
    lines = []
    for line in option.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            lines.append(line.lstrip("# ").strip())
    return " ".join(lines).strip()


@pytest.mark.parametrize("option", CONFIG_OPTIONS, ids=lambda p: str(p.relative_to(CONF)))
def test_every_config_option_documents_itself_or_is_in_the_configuration_reference(
    option: Path,
) -> None:
    """A new option is documented by its own header comment; one without a header must be
    described in docs/configuration.md."""
    if len(header_comment(option).split()) >= 3:
        return
    group, name = str(option.parent.relative_to(CONF)), option.stem
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    spelled = (f"{group}={name}", f"{group}/{name}", f"conf/{group}/{name}.yaml")
    in_a_list = re.search(rf"`{re.escape(group)}=[\w|]*\b{re.escape(name)}\b", page)
    in_its_section = any(
        f"`{name}`" in body for head, body in _sections(page).items() if f"`{group}" in head
    )
    assert any(s in page for s in spelled) or in_a_list or in_its_section, (
        f"{group}={name}: no header comment in conf/{group}/{name}.yaml and not described in "
        "docs/configuration.md"
    )


GROUPS = sorted({str(p.parent.relative_to(CONF)) for p in CONFIG_OPTIONS}, key=len, reverse=True)
# `group=a|b|c` as the docs spell a choice of options
CHOICE = re.compile(r"`([\w/]+)=([\w|]+)")


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_the_docs_name_only_config_options_that_exist(page: Path) -> None:
    """Checked against conf/: an option the docs name as `group=option` is a file on disk."""
    stale = []
    for number, line in prose_lines(page):
        for group, names in CHOICE.findall(line):
            if group not in GROUPS:
                continue
            stale.extend(
                f"{_rel(page)}:{number}: {group}={name}"
                for name in names.split("|")
                if name and not (CONF / group / f"{name}.yaml").is_file()
            )
    assert not stale, "no such config option:\n" + "\n".join(stale)


def test_header_comment_reads_the_opening_comment_only(tmp_path: Path) -> None:
    option = tmp_path / "x.yaml"
    option.write_text("# @package _global_\n# A cell of my own,\n# step by step.\nkey: 1  # no\n")
    assert header_comment(option) == "A cell of my own, step by step."
