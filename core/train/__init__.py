"""Training: a run's config, its data and inputs, the loop and its callbacks, evaluation, and the
worker process (``python -m core.train RUN_ID``).

==============  =====================================================================
module          idea
==============  =====================================================================
config          ``RunConfig`` (torch-free; stored with every run)
estimates       run-time estimate shown before a run starts (torch-free)
run_data        the rows a run uses: train / val / test, compact labels, slices
inputs          model inputs built once; an epoch's draw cut into batches
schedule        AdamW with warm-up and cosine decay
events          loop state, ``Control``, callback events, evaluation records
progress        throughput and ETA
callbacks       cadence, stop requests, early stopping, checkpoints, the metric writer
pseudo_labels   self-training: the model labels the unlabelled pool at chosen epoch ends
evaluate        scoring val and test; the best evaluation; temperature scaling
loop            ``fit``: the loop itself
prepare         data, device, model, inputs and seams before the first step
checkpoints     ``best.pt`` / ``last.pt``
sink            where a worker writes (``RunSink``; ``StoreSink`` for the local store)
speed           the GPU fast path: auto batch and lr, fixed shapes, when to tune or compile
distributed     several processes of one run under torchrun (DDP)
worker          a run from claim to final status; the process entry point
==============  =====================================================================

This file imports nothing, so pages can read ``core.train.config`` without loading torch.
"""
