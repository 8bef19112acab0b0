"""Models: one registry (torch-free), builders per family, and the one preprocessing path for images and texts. See ``core.models.registry``."""
