"""BENCHMARKS.md is written by several benches, each owning one `## ` section."""
from pathlib import Path


def write_section(path: Path, title: str, section: str) -> None:
    """Replaces the section headed TITLE in the markdown file PATH (up to the next `## `) with
    SECTION, which starts with TITLE; appends it when the file has no such section."""
    text = path.read_text() if path.exists() else ""
    if title + "\n" in text:
        head, rest = text.split(title + "\n", 1)
        tail = rest[rest.find("\n## "):] if "\n## " in rest else ""
        text = head + section.rstrip("\n") + "\n" + tail
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)
