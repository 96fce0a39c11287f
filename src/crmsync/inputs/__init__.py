"""Input files people hand to crmsync: UTF-8 JSON Lines (``evaluate``, ``explain``,
``report``, ``local import``) and Data Loader CSV (``local import``), with one encoding
sniffer for all of them. Problems are exceptions naming the file and line; the CLI prints
them."""
