"""Case backend for Signalen (meldingen openbare ruimte); see ``plugin.Plugin``."""
