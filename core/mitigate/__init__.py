"""What the training loop does about incomplete data — the seams every mitigation plugs into.

``Mitigations`` (``settings``) is the typed part of a run's config that says what to use; each
seam has a no-op default, so a run without mitigations trains exactly as before:

- a **sampler** (``sampler``) decides which train items an epoch draws, with repeats;
- a **criterion** (``criterion``) turns logits and labels into a loss, and may use class counts;
- an **augmenter** (``augment``) maps a batch to a batch on the training device; text
  augmentation happens before tokenising (``TextAugmenter``).

``seams.seams(mitigations, ...)`` builds the three for a run (``core.train.prepare`` calls it).
This package file imports nothing: ``settings`` is read by pages, which must not load torch.
"""
