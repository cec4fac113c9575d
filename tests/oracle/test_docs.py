"""The docs a newcomer walks: README.md (the front door) and docs/*.md (one topic a page).

Cheap checks that keep "every command in the docs is tested" true:
- every relative link of README.md and docs/*.md points at a file that exists, and every
  `#anchor` at a heading of its target (GitHub's slugs);
- every docs page is linked from README.md, and links back to it;
- README.md stays at most 200 lines;
- every line of a ```sh / ```bash block that runs `producer`, `virtualizer` or `committer`
  (after `$ ` or environment assignments, chained with `&&`, `;`, `|` or `&`, or through
  `cargo run … -p floe-producer --`) names a subcommand that exists, nested ones included
  (`producer dlq list`), and every `--long-flag` it uses is an option of that subcommand's
  `--help`. The checks are tried on synthetic text too, so they can fail;
- the README's five-minute tour runs as printed, in an empty directory, each of its commands
  exiting 0 (the Python snippet is test_first_hour.py's).
"""
import os
import re
import shlex
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

from conftest import binary

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
BINARIES = {"producer", "virtualizer", "committer"}
PACKAGES = {f"floe-{name}": name for name in BINARIES}
README_MAX_LINES = 200

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


# ---------------------------------------------------------------- markdown

def split_blocks(text):
    """(prose lines, code blocks): prose as (line number, text) outside fences, each code block
    as (language, first line number, [lines]). Indented fences (inside list items) count."""
    prose, blocks, block = [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        fence = FENCE.match(line)
        if block is None:
            if fence:
                block = {"fence": fence.group(2), "lang": fence.group(3).lower(), "start": number, "lines": []}
            else:
                prose.append((number, line))
        elif fence and fence.group(2)[0] == block["fence"][0] and len(fence.group(2)) >= len(block["fence"]) \
                and not fence.group(3):
            blocks.append((block["lang"], block["start"], block["lines"]))
            block = None
        else:
            block["lines"].append(line)
    assert block is None, f"a code block opened at line {block['start']} is never closed"
    return prose, blocks


def slug(heading):
    """GitHub's anchor for a heading: its text without markup, lowercased, punctuation other
    than `-` and `_` removed, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text):
    seen, result = {}, set()
    prose, _ = split_blocks(text)
    for _, line in prose:
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            result.add(base if n == 0 else f"{base}-{n}")
        for html in re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", line):
            result.add(html)
    return result


def links(text):
    """(line number, target) of every link outside code: inline, images and references."""
    prose, _ = split_blocks(text)
    found = []
    for number, line in prose:
        bare = INLINE_CODE.sub("", line)
        found += [(number, target) for target in LINK.findall(bare)]
        reference = REFERENCE.match(bare)
        if reference:
            found.append((number, reference.group(1)))
    return found


def is_external(target):
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target)) or target.startswith("//")


def link_problems(page, text=None):
    """Every relative link of `page` whose file or anchor does not exist."""
    text = page.read_text() if text is None else text
    problems = []
    for number, target in links(text):
        if is_external(target):
            continue
        path, _, anchor = target.partition("#")
        resolved = page if not path else (page.parent / path).resolve()
        where = f"{page.relative_to(ROOT) if page.is_relative_to(ROOT) else page}:{number}: {target}"
        if path and not resolved.exists():
            problems.append(f"{where}: {path} does not exist")
            continue
        if anchor and resolved.suffix == ".md":
            target_text = text if resolved == page else resolved.read_text()
            if anchor not in anchors(target_text):
                problems.append(f"{where}: no heading #{anchor} in {resolved.name}")
    return problems


def linked_files(page):
    return {(page.parent / target.partition("#")[0]).resolve()
            for _, target in links(page.read_text()) if not is_external(target) and target.partition("#")[0]}


# ---------------------------------------------------------------- commands

def shell_lines(lines):
    """The block's logical lines: comments kept for shlex, `\\` continuations joined."""
    joined, pending = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    if pending:
        joined.append(pending)
    return joined


def tokens(line):
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:  # an unbalanced quote (a JSON argument spread over lines): words only
        return line.split("#", 1)[0].split()


SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")", ";;"}
PREFIXES = {"$", "time", "env", "sudo", "nohup", "exec", "command"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def commands(line):
    """Each simple command of a shell line, as a list of words."""
    current, result = [], []
    for token in tokens(line):
        if token in SEPARATORS or set(token) <= set(";&|()"):
            if current:
                result.append(current)
            current = []
        else:
            current.append(token)
    if current:
        result.append(current)
    return result


def floe_invocation(words):
    """(binary, arguments) when the command runs one of floe's binaries, else None."""
    words = list(words)
    while words and (words[0] in PREFIXES or ASSIGNMENT.match(words[0])):
        words.pop(0)
    if not words:
        return None
    head = os.path.basename(words[0])
    if head in BINARIES:
        return head, words[1:]
    if head == "cargo" and len(words) > 1 and words[1] == "run":
        name = None
        for flag, value in zip(words, words[1:]):
            if flag in ("-p", "--package") and value in PACKAGES:
                name = PACKAGES[value]
            elif flag == "--bin" and value in BINARIES:
                name = value
        if name:
            return name, words[words.index("--") + 1:] if "--" in words else []
    return None


def is_placeholder(word):
    """A word standing for a command rather than being one: SUBCOMMAND, <cmd>, …, a|b."""
    return (word in ("...", "…") or re.fullmatch(r"[A-Z][A-Z0-9_]*", word) is not None
            or word.startswith("<") or "|" in word)


@lru_cache(maxsize=None)
def help_of(name, path):
    """(subcommands, long options) that `name path… --help` lists."""
    proc = subprocess.run([binary(name), *path, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{name} {' '.join(path)} --help: exit {proc.returncode}\n{proc.stderr}"
    subcommands, options, section = set(), set(), None
    for line in proc.stdout.splitlines():
        title = re.match(r"^(\w[\w ]*):\s*$", line)
        if title:
            section = title.group(1)
            continue
        if section == "Commands":
            command = re.match(r"^\s{2}([a-z][\w-]*)\b", line)
            if command:
                subcommands.add(command.group(1))
        option = re.match(r"^\s{2,6}(?:-\w,\s+)?(--[A-Za-z0-9][\w-]*)", line)
        if option:
            options.add(option.group(1))
    subcommands.discard("help")
    return frozenset(subcommands), frozenset(options)


def check_invocation(name, args):
    """Problems of one invocation: an unknown subcommand, a flag its --help does not list.
    Returns (problems, checked) where checked is False for a placeholder command."""
    words = [w.strip("[]") for w in args]
    words = [w for w in words if w]
    path = []
    subcommands, options = help_of(name, ())
    rest = words
    while subcommands:
        positional = next((w for w in rest if not w.startswith("-")), None)
        if positional is None:
            return [f"{name} {' '.join(path)}: no subcommand (one of {sorted(subcommands)})"], True
        if is_placeholder(positional):
            return [], False
        if positional not in subcommands:
            return [f"{name} {' '.join(path)}: no subcommand {positional!r} (has {sorted(subcommands)})"], True
        path.append(positional)
        rest = rest[rest.index(positional) + 1:]
        subcommands, options = help_of(name, tuple(path))
    problems = []
    for word in rest:
        if word.startswith("--") and len(word) > 2:
            flag = word.split("=", 1)[0]
            if flag not in options:
                problems.append(f"{name} {' '.join(path)}: {flag} is not an option (has {sorted(options)})")
    return problems, True


def invocations(text):
    """(line number, line, binary, arguments) of every floe command in sh/bash blocks."""
    _, blocks = split_blocks(text)
    found = []
    for lang, start, lines in blocks:
        if lang not in ("sh", "bash", "shell", "console"):
            continue
        for offset, line in enumerate(shell_lines(lines), 1):
            stripped = line.strip()
            if stripped.startswith("$ "):
                stripped = stripped[2:]
            for words in commands(stripped):
                invocation = floe_invocation(words)
                if invocation:
                    found.append((start + offset, stripped, *invocation))
    return found


def command_problems(page, text=None):
    text = page.read_text() if text is None else text
    problems, checked = [], 0
    for number, line, name, args in invocations(text):
        found, real = check_invocation(name, args)
        checked += real
        problems += [f"{page.name}:{number}: {line}\n    {p}" for p in found]
    return problems, checked


# ---------------------------------------------------------------- the tests

def test_there_are_docs_pages():
    assert len(DOCS) >= 5, DOCS


def test_every_relative_link_and_anchor_exists():
    problems = [p for page in PAGES for p in link_problems(page)]
    assert not problems, "\n".join(problems)


def test_every_docs_page_is_linked_from_the_readme_and_links_back():
    from_readme = linked_files(README)
    missing = [str(p.relative_to(ROOT)) for p in DOCS if p.resolve() not in from_readme]
    assert not missing, f"docs pages the README does not link: {missing}"
    no_way_back = [str(p.relative_to(ROOT)) for p in DOCS if README.resolve() not in linked_files(p)]
    assert not no_way_back, f"docs pages without a link back to the README: {no_way_back}"


def test_the_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines, more than {README_MAX_LINES}"
    text = README.read_text()
    assert "## The two commands" in text
    assert "cargo run --release -p floe-producer -- local --store floe-demo/store" in text
    assert "bash tests/run.sh" in text
    assert "<!-- readme-snippet: tested by tests/oracle/test_first_hour.py -->" in text


def test_every_command_in_the_docs_exists_with_its_flags():
    problems, checked = [], 0
    for page in PAGES:
        found, n = command_problems(page)
        problems += found
        checked += n
    assert not problems, "\n".join(problems)
    # The docs show each binary at work: a parser that found nothing would pass vacuously.
    names = {name for page in PAGES for _, _, name, _ in invocations(page.read_text())}
    assert names == BINARIES, names
    assert checked >= 20, checked


def tour_commands():
    """The lines of the README's tour that start with one of floe's binaries, in order."""
    text = README.read_text()
    assert "\n## A five-minute tour\n" in text
    tour = text.split("\n## A five-minute tour\n", 1)[1].split("\n## ", 1)[0]
    _, blocks = split_blocks(tour)
    found = []
    for lang, _, lines in blocks:
        if lang in ("sh", "bash"):
            for line in shell_lines(lines):
                words = commands(line.strip())
                if words and words[0][0] in BINARIES:
                    found.append(line.strip())
    return found


def test_the_readme_tour_runs_as_printed(tmp_path):
    lines = tour_commands()
    assert lines and lines[0].startswith("producer local"), lines  # the demo first: the rest use it
    assert {line.split()[0] for line in lines} == BINARIES, lines
    bin_dir = Path(binary("producer")).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    for line in lines:
        proc = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{line}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


# ---------------------------------------------------------------- the checks can fail

SYNTHETIC = """# Title

## A `code` heading (with punctuation)!

```sh
producer local --store s --no-such-flag
FOO=1 producer frobnicate --store s
producer dlq nosuch
$ cargo run --release -p floe-producer -- local --bogus-flag
producer plan && committer log --store s --nope
virtualizer worker [--not-a-flag 3] &
producer dlq redrive --queue work --also-not-real
producer SUBCOMMAND --anything   # a placeholder: not checked
producer local --store s --json  # right
```

```python
producer local --ignored-in-python
```
"""


def test_the_command_check_catches_wrong_subcommands_and_flags():
    found = invocations(SYNTHETIC)
    assert [name for _, _, name, _ in found] == [
        "producer", "producer", "producer", "producer", "producer", "committer", "virtualizer", "producer",
        "producer", "producer"]
    results = [check_invocation(name, args) for _, _, name, args in found]
    problems = [p for found_problems, _ in results for p in found_problems]
    text = "\n".join(problems)
    for expected in ["--no-such-flag", "'frobnicate'", "'nosuch'", "--bogus-flag", "--nope", "--not-a-flag",
                     "--also-not-real"]:
        assert expected in text, (expected, text)
    assert len(problems) == 7, text
    assert [checked for _, checked in results].count(False) == 1  # the placeholder
    assert results[-1] == ([], True)


def test_the_link_check_catches_missing_files_and_anchors(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/there.md").write_text("# There\n\n## Some `thing`: here\n")
    page = tmp_path / "README.md"
    text = (SYNTHETIC + "\n[ok](docs/there.md) [ok](docs/there.md#some-thing-here) [ok](#a-code-heading-with-punctuation)"
            "\n[bad](docs/gone.md) [bad](docs/there.md#nowhere) [bad](#title-1) [ext](https://example.com/x)"
            "\n`[in code](docs/gone-too.md)`\n")
    problems = link_problems(page, text)
    assert len(problems) == 3, problems
    assert any("docs/gone.md does not exist" in p for p in problems)
    assert any("#nowhere" in p for p in problems) and any("#title-1" in p for p in problems)


def test_the_slugs_are_githubs():
    assert slug("Continuous indexing: `producer watch`") == "continuous-indexing-producer-watch"
    assert slug("Deploying to AWS (`infra/`)") == "deploying-to-aws-infra"
    assert slug("Status: what is done and what is not") == "status-what-is-done-and-what-is-not"
    assert anchors("# A\n## A\n```sh\n# A\n```\n") == {"a", "a-1"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_code_blocks_are_closed(page):
    split_blocks(page.read_text())
