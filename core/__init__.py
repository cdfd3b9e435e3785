"""PadLens core: model, data, training and analysis. Never imports Qt, so it runs in scripts and notebooks."""
