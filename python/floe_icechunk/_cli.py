"""The console scripts: each runs its Rust command line in this process and exits with its code."""
import signal
import sys

from floe_icechunk import _native


def _run(program):
    # Python turns SIGINT into KeyboardInterrupt only when Python code runs, which it does not
    # while the command does: the default disposition ends the process on Ctrl-C as it ends the
    # binary. Commands that stop gracefully (the workers) install their own handler in Rust.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.stdout.flush()
    sys.exit(_native.run_cli(program, sys.argv))


def producer():
    _run("producer")


def virtualizer():
    _run("virtualizer")


def committer():
    _run("committer")
