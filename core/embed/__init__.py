"""Embeddings of every item from a pretrained backbone, cached on disk by content hash
(``core.embed.embeddings``; the cache files: ``core.embed.cache``)."""
