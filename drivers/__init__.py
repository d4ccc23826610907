"""The lab's instrument drivers: one module per instrument family, loaded as ``benchctl_drivers``.

Each module declares ``ROLE``, ``OPTIONS`` and ``connect(name, resource, options, *, operator)``.
"""
