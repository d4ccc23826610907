"""benchctl's performance suite (``make bench`` / ``python -m benchmarks``).

Every figure is measured against a baseline taken in the same run on the same machine, so the
ratio means something even on a loaded laptop or a shared CI runner. One module per figure;
:mod:`benchmarks.runner` runs them, prints the table and writes ``docs/benchmarks.md``.
"""
