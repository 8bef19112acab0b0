"""Who runs training: the ``Runner`` protocol (``base``), the local subprocess runner (``local``)
and the process helpers it uses (``processes``). torchrun and Ray runners plug in beside them."""
