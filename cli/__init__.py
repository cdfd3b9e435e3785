"""The `padlens` command line: the top layer over padlens.gui (the app) and padlens.core (the work)."""
