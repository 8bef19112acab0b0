"""Who a run fails, and two fixes for it.

- ``groups``: metrics per group of a sensitive column through fairlearn's ``MetricFrame`` with the
  project's own metrics, the gaps between groups, and for two-class tasks demographic parity and
  equalized odds differences with bootstrap intervals;
- ``mitigate``: re-weighting by group and label (Kamiran & Calders) as a new version the
  ``importance`` sampler reads, and a threshold per group fitted on val (fairlearn's
  ``ThresholdOptimizer``);
- ``evaluate``: a finished run measured by a column from the probabilities it kept, the record kept
  with the run, and what Compare and the report show of the records.

Torch-free.
"""
