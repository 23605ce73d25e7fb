"""Diagnostics: recorders fed by engine events, spectral probes and matplotlib figures."""
