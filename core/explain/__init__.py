"""Why a finished run answered as it did, item by item.

- ``attribute``: Captum attributions of a run's result model for one item and one class —
  Integrated Gradients (on the token embeddings for text, merged to words; on the pixels for
  images; on the encoded columns for tables, summed back to each column), occlusion for images,
  feature ablation for tables, plain gradients as the baseline a better method must beat.
- ``neighbours``: the data-centric "why" — the item's nearest train items in embedding space, their
  labels, which of them are suspected label errors and which classes are thin (torch-free).
- ``faithfulness``: deletion curves (remove the most attributed parts first; the faster the class's
  probability falls, the more faithful the attribution) and their area (torch-free).
- ``cache``: attributions kept per run under its folder; ``ExplainJob`` computes a gallery's in the
  background.
"""
