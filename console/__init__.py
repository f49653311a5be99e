"""The duty-nurse console: a live web page where alerts arrive, are acknowledged and resolved."""
