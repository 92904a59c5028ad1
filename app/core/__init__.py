"""Everything that works without Qt. Nothing under app.core may import PySide6."""
