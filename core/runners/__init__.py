"""Who runs training: the ``Runner`` protocol (``base``), what every runner shares on the store's
queue (``queue``), the local subprocess runner (``local``) and its process helpers (``processes``),
the ranks of a run of several processes on a Ray node (``ranks``), and the Ray runner (the ``ray``
package)."""
