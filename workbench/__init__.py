"""Movability Workbench: unsupervised object segmentation with generative models.

An object is what can be moved: shift it a little over its background and the scene still
looks real. The package implements the four methods of Bielski's thesis on that principle.

Layers, each importing only those before it::

    data -> ops -> nets -> losses -> methods -> train / eval -> bench / cli
"""

__version__ = "0.1.0"
