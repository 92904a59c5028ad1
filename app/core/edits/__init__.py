"""Edits proposed by the model: parse → plan (diff hunks) → apply selected hunks → undo.

The whole public API, usable without Qt::

    changes = plan_changes(project_root, answer_text)      # reads only
    for c in changes.changes: c.hunks, c.result_text(accepted)
    record = apply_changes(project_root, [(c, accepted_hunks)], UndoStore(folder))
    undo(store, record)

Formats live in ``formats``, tolerant matching in ``match``, path safety in
``project_path``, the file model (line endings, encoding, mode) in ``textfile``; the /code
prompt that asks for them in ``prompt``, a change as highlighted HTML in ``diff_render``.
"""

from app.core.edits.apply import (ApplyError, StaleFileError, UndoConflict, UndoRecord, UndoStore,
                                  apply_changes, undo)
from app.core.edits.formats import FileEdit, ParsedAnswer, parse_answer
from app.core.edits.plan import DELETED, MODIFIED, NEW, ChangeSet, EditProblem, FileChange, Hunk, plan_changes
from app.core.edits.project_path import UnsafePathError, resolve_in_project

__all__ = ["ApplyError", "StaleFileError", "UndoConflict", "UndoRecord", "UndoStore", "apply_changes", "undo",
           "FileEdit", "ParsedAnswer", "parse_answer", "DELETED", "MODIFIED", "NEW", "ChangeSet", "EditProblem",
           "FileChange", "Hunk", "plan_changes", "UnsafePathError", "resolve_in_project"]
