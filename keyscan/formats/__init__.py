"""Content formats: the layer below ``keyscan.content``.

Decoders (base64, percent-encoding, string escapes, UTF-16), Jupyter notebooks and archives
expand bytes into more bytes. They never import the scanner (``keyscan.content``,
``keyscan.sources``, ``keyscan.detector``, ``keyscan.pipeline``): the content layer hands
them a way to rescan what they expand, and the list that collects what could not be read.
"""
