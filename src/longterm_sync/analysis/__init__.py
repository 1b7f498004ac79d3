"""Looking at the data: the results table, device and missing-video reports, sensor figures.

Pure functions over results as download-results writes them (or as the server sends them):
nothing here talks to the network or prints. :mod:`longterm_sync.pipelines.analysis` feeds
them, from a folder or from the server, and the CLI renders what they return.
"""
