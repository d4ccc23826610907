"""The procedure runner: run context, operator channels, clock, pause/resume/abort."""
