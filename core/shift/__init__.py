"""Shift: is new data outside what a model knows, and how wrong will the model be there.

- ``detect``: two-sample tests between a reference and a target — MMD with a permutation p-value
  and a domain classifier's AUC on embeddings, per-feature KS / χ² with a false-discovery-rate
  correction on tables.
- ``estimate``: what a finished run will score on an unlabelled target — label shift by black-box
  shift estimation (BBSE), accuracy by average thresholded confidence (ATC) and by mean
  (calibrated) confidence, the expected hallucination rate @τ.

NumPy, SciPy and scikit-learn only: no torch, no streamlit.
"""
