"""Widgets of the benchctl TUI (one module each)."""
