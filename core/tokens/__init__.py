"""Token classification (named entities): data, spans, augmentation, corruption, detection, training.

A sentence is a list of tokens and a list of tags of the same length, in IOB2 ("O", "B-PER",
"I-PER"). Loaders convert every other scheme to IOB2 on the way in, so everything past them reads
IOB2 only. A stored token dataset is a ``core.data.dataset.Dataset`` of modality ``"tokens"``:
``items`` holds each sentence's tokens (a tuple of str), ``tags`` its IOB2 tags (a tuple of str),
and ``labels`` the sentence's rarest entity type (``core.tokens.spans.sentence_labels``), so every
per-class tool (stratified splits, class-balanced sampling) treats a sentence by its rarest type.
"""
