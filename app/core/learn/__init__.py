"""Learning from the user's own project: training pairs built from its code."""
