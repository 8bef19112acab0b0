"""Selection: which train items to keep, and which unlabelled items to label next.

- ``scores``: from a run's training dynamics (``core.train.dynamics``) — the data map (confidence
  and variability of the given label's probability across epochs; Swayamdipta et al. 2020), EL2N
  (Paul et al. 2021) and forgetting events (Toneva et al. 2019).

NumPy and pandas only: no torch, no streamlit.
"""
