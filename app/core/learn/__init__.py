"""Learning: training pairs built from the user's own project (``project_set``), and rated
answers and applied edits exported for the notebook (``training_export``); what may leave the
machine (scrub, de-duplicate, split, JSONL) is ``dataset``'s."""
