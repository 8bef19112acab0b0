"""How easily a run is fooled, and training that makes it harder.

- ``attack``: FGSM and PGD under an L∞ budget on any differentiable function (torch), and
  ``Adversary``, the adversarial-training seam of the loop (FGSM with a random start, or PGD-k);
- ``words``: a word-substitution attack on text with offline WordNet synonyms (words tried in the
  order their deletion lowers the true class most, at most a fixed number changed);
- ``evaluate``: a finished run's robustness — clean accuracy, robust accuracy, attack success rate
  and confident-wrong under attack @τ at each ε — with a few attacked examples kept; ``RobustnessJob``
  runs it in the background;
- ``records``: the results kept per run (``robustness.json``), read by Compare and the report
  (torch-free).

Written over torch rather than taken from adversarial-robustness-toolbox: the attack must run on
the training device inside the loop, batch by batch, through the run's own preprocessing; ART works
on NumPy arrays through its own classifier wrapper. The tests check these attacks against ART's.
"""
