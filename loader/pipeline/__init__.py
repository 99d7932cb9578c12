"""The doit side of the pipeline: the file checker, the reporter and the
refresh report, and running the graph in-process (``imageworks-loader
refresh``). The graph itself is built in ``loader.tasks``."""
