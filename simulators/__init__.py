"""Simulated instruments for benchctl: a shared simulated world and wire-protocol servers.

benchctl loads this folder by path as the package ``benchctl_simulators``; the modules import
each other relatively and use nothing from benchctl, because they run as separate servers.
Entry point: ``bench.start_simulation``.
"""
