"""benchctl: a calibration-bench controller for verification and calibration laboratories."""

__version__ = "0.1.0"
