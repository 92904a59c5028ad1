"""Offline Coder: a desktop coding assistant that runs a local model with the network cut off."""

__version__ = "0.1.0"
APP_NAME = "Offline Coder"
