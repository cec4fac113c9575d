"""What the benches share: BENCHMARKS.md sections (each bench owns one `## ` section) and the
peak memory of the processes they run."""
import os
import shutil
import subprocess
import tempfile
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


def publish(out, title: str, section: str) -> None:
    """Prints SECTION and, when OUT (a path or None) is given, writes it as OUT's TITLE section."""
    print(section)
    if out:
        write_section(Path(out), title, section)


def measured_popen(cmd, **popen_kwargs):
    """Starts CMD under GNU time (Debian package `time`), which reports the peak RSS of CMD
    alone. The kernel's high-water mark survives exec, so wait4's ru_maxrss of a child forked
    from this Python process would report the bench's own RSS at the fork instead (every
    worker then "peaks" at the same figure). Returns the Popen; pass it to `wait_rss`."""
    time_bin = shutil.which("time") or "/usr/bin/time"
    if not Path(time_bin).exists():
        raise SystemExit("the benches measure peak memory with GNU time: apt-get install time")
    report = tempfile.NamedTemporaryFile(prefix="floe-rss-", delete=False)
    report.close()
    proc = subprocess.Popen([time_bin, "-f", "%M", "-o", report.name, *map(str, cmd)], **popen_kwargs)
    proc.rss_report = report.name
    return proc


def wait_rss(proc):
    """Waits for PROC (from `measured_popen`); returns (exit code, peak RSS of its command in MB)."""
    code = proc.wait()
    lines = Path(proc.rss_report).read_text().split()
    os.unlink(proc.rss_report)
    # GNU time writes "Command exited with non-zero status N" before the figure on failure.
    kb = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    return code, kb / 1024
