"""Offline Coder: a desktop coding assistant that runs a local model with the network cut off."""

from app import no_telemetry as _no_telemetry

_no_telemetry.apply()  # before any dependency is imported: see app/no_telemetry.py

__version__ = "0.1.0"
APP_NAME = "Offline Coder"
