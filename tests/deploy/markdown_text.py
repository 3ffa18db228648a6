"""Reading the project's Markdown the way the tests need it: sections, tables, links, heading
anchors (as GitHub makes them) and the shell blocks marked runnable.

Small on purpose: the documents are plain GitHub Markdown, and a full parser would add a
dependency for nothing these checks need.
"""

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6}) +(.*?) *#*$")
# A marker is an HTML comment alone on the line before a shell fence.
MARKER = re.compile(r"^<!-- runnable( with the app)? -->$")
MARKER_START = "<!-- runnable"
SHELL_FENCES = ("```sh", "```bash")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(<?([^)\s>]+)>?(?: \"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")


@dataclass(frozen=True)
class Block:
    """A shell block marked runnable: where it is, its text, and whether it needs the app on
    localhost:5000 (`<!-- runnable with the app -->`)."""

    path: Path
    line: int  # of the opening fence, counting from 1
    text: str
    with_app: bool


def prose_lines(text: str):
    """(line number, line) of every line outside fenced code blocks."""
    inside = False
    for number, line in enumerate(text.split("\n"), start=1):
        if FENCE.match(line.lstrip()):
            inside = not inside
            continue
        if not inside:
            yield number, line


def headings(text: str):
    """(level, title) of every heading outside code blocks."""
    for _, line in prose_lines(text):
        match = HEADING.match(line)
        if match:
            yield len(match.group(1)), match.group(2)


def slug(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "")
    title = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return title.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every `#anchor` the headings of a document make, duplicates numbered as GitHub does."""
    seen: dict[str, int] = {}
    out = set()
    for _, title in headings(text):
        base = slug(title)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def links(text: str):
    """(line number, target) of every Markdown link and image outside code."""
    for number, line in prose_lines(text):
        for match in LINK.finditer(CODE_SPAN.sub("", line)):
            yield number, match.group(1)


def section(text: str, title: str) -> str:
    """The text under the heading `title`, up to the next heading of the same or a higher level."""
    lines = text.split("\n")
    start = level = None
    for number, line in prose_lines(text):
        match = HEADING.match(line)
        if not match:
            continue
        if start is None and match.group(2) == title:
            start, level = number, len(match.group(1))
        elif start is not None and len(match.group(1)) <= level:
            return "\n".join(lines[start : number - 1])
    if start is None:
        raise AssertionError(f"no heading {title!r}")
    return "\n".join(lines[start:])


def table(text: str) -> list[list[str]]:
    """The body rows of the first table in `text`, as lists of cells (header and rule left out)."""
    lines = []
    for _, line in prose_lines(text):
        if line.startswith("|"):
            lines.append(line.strip())
        elif lines:
            break
    assert len(lines) >= 2 and re.fullmatch(r"[|:\- ]+", lines[1]), f"no table in:\n{text[:300]}"
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def unquote(cell: str) -> str:
    """A table cell as plain text: code marks removed, spaces collapsed."""
    return " ".join(cell.replace("`", "").split())


def markers(path: Path):
    """(line number, marker line, next line) of every line that starts like a runnable marker."""
    lines = path.read_text().split("\n")
    for index, line in enumerate(lines):
        if line.startswith(MARKER_START):
            following = lines[index + 1] if index + 1 < len(lines) else ""
            yield index + 1, line, following


def runnable_blocks(path: Path) -> list[Block]:
    """The shell blocks of a document that a well-formed marker precedes."""
    lines = path.read_text().split("\n")
    blocks = []
    for index, line in enumerate(lines):
        match = MARKER.match(line)
        if not match or index + 1 >= len(lines) or lines[index + 1] not in SHELL_FENCES:
            continue
        end = lines.index("```", index + 2)
        blocks.append(Block(path, index + 2, "\n".join(lines[index + 2 : end]), bool(match.group(1))))
    return blocks
