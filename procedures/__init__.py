"""Bundled procedures (loaded by benchctl as the package ``benchctl_procedures``)."""
