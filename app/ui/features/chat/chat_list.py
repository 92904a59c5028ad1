"""The conversation list's work: fill it (filtered by the search box, through the database's
full-text search), pin, export one chat as Markdown, delete several at once.

Why apart from feature.py: none of it touches a turn; the feature only refuses what would pull a
conversation from under a running answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.core.chat.markdown_export import export_markdown, file_name_for
from app.core.errors import UserError
from app.ui.errors import describe_error

if TYPE_CHECKING:
    from app.ui.features.chat.feature import ChatFeature


class ChatList:
    def __init__(self, chat: "ChatFeature"):
        self.chat = chat

    def refresh(self) -> None:
        chat = self.chat
        text = chat.conversations.search.text()
        convs = chat.ctx.storage.search_conversations(text) if text.strip() else chat.ctx.storage.conversations()
        chat.conversations.set_conversations(convs, chat.current_id)

    def pin(self, conversation_id: int, pinned: bool) -> None:
        try:
            self.chat.ctx.storage.pin_conversation(conversation_id, pinned)
        except UserError as e:
            self.chat.panel.show_error(describe_error(e))
            return
        self.refresh()
        self.chat.host.notify("Pinned: it stays at the top" if pinned else "Unpinned", 3000)

    def export_markdown(self, conversation_id: int | None, path: str | Path | None = None) -> Path | None:
        """Write one chat (its branch on show) as Markdown; asks where unless ``path`` is given."""
        chat = self.chat
        conv = chat.ctx.storage.conversation(conversation_id) if conversation_id is not None else None
        if conv is None:
            chat.host.notify("Open a chat to export first.", 3000)
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(chat.host.window, "Export chat as Markdown",
                                                  str(Path.home() / file_name_for(conv.title)), "Markdown (*.md)")
            if not path:
                return None
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".md")
        try:
            written = export_markdown(chat.ctx.storage, conv.id, path)
        except UserError as e:
            chat.panel.show_error(describe_error(e))
            return None
        chat.host.notify(f"Exported “{conv.title}” to {written}", 5000)
        return written

    def delete(self, ids: list[int], confirm: bool = True) -> None:
        """Delete the chats (one question for all of them); not one whose answer is being written."""
        chat, storage = self.chat, self.chat.ctx.storage
        convs = [c for c in (storage.conversation(i) for i in ids) if c is not None]
        if not convs:
            return
        if chat.pending is not None and chat.pending.conversation_id in {c.id for c in convs}:
            chat.host.notify("Stop the answer before deleting its conversation.")
            return
        what = f"“{convs[0].title}” and all its messages" if len(convs) == 1 else \
            f"these {len(convs)} conversations and all their messages"
        if confirm and QMessageBox.question(chat.host.window, "Delete conversation" + "s" * (len(convs) > 1),
                                            f"Delete {what}?") != QMessageBox.Yes:
            return
        gone = [c.id for c in convs]
        try:
            storage.delete_conversations(gone)
        except UserError as e:
            chat.panel.show_error(describe_error(e))
            return
        for cid in gone:
            chat.ctx.kv_cache.forget(cid)
        chat.branches.conversations_deleted(gone)
        if chat.current_id in gone:
            left = storage.conversations()
            chat.current_id = left[0].id if left else None
            chat.show_conversation()
        self.refresh()
