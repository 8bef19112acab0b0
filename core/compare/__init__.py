"""Runs side by side: ``runs`` (metrics, deltas, what can be compared, settings that differ) and
``examples`` (which test items a change fixed or broke). Torch-free."""
