"""The front doors: the CLI, the Hydra apps, completion and output tables."""
