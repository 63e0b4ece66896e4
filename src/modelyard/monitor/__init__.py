"""Monitoring: the prediction log, drift against the training data, alert rules and
notifications, Prometheus metrics and exports (tracing is :mod:`modelyard.telemetry`).

Nothing is imported here at package import time; import the submodules you need.
"""
