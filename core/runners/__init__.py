"""Who runs training: the ``Runner`` protocol (``base``), what every runner shares on the store's
queue (``queue``), the local subprocess runner (``local``) and its process helpers (``processes``),
and the Ray runner (``cluster``)."""
