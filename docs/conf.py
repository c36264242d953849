"""Sphinx configuration for the routilux documentation.

Build with warnings as errors::

    sphinx-build -W -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys

# Document the working tree even when routilux is not installed.
sys.path.insert(0, os.path.abspath(".."))

import routilux

project = "routilux"
author = "routilux developers"
copyright = "routilux developers"
release = routilux.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build"]
templates_path: list[str] = []

# -- autodoc -------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}
autoclass_content = "class"

napoleon_google_docstring = True
napoleon_numpy_docstring = False

# -- HTML ----------------------------------------------------------------------------
html_theme = "furo"
html_title = f"routilux {release}"
html_static_path = ["_static"]  # flowfile.schema.json is published from here
