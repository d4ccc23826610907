"""The technician's terminal UI: live bench, guided runs, history and register.

Import :class:`benchctl.tui.app.BenchApp` (or run ``benchctl tui``); importing this package
alone does not import Textual, so the command line stays fast.
"""
