"""The red line that shows an error a user can act on, styled the same everywhere."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

ERROR_STYLE = "background:#fde7e9; color:#8a1c1c; padding:6px; border-radius:4px;"


def error_label(object_name: str) -> QLabel:
    """Hidden until it has text; wraps, and the text can be selected and copied."""
    label = QLabel()
    label.setObjectName(object_name)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    label.setStyleSheet(ERROR_STYLE)
    label.hide()
    return label
