"""Sphinx configuration of zope_sessionx's documentation."""
import os
import sys


sys.path.insert(0, os.path.abspath('../src'))

project = 'zope_sessionx'
author = 'zope_sessionx developers'
copyright = '2026, zope_sessionx developers'
release = version = '0.1.dev0'

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.intersphinx',
    'sphinx.ext.viewcode',
    'repoze.sphinx.autointerface',
]

master_doc = 'index'
exclude_patterns = ['_build']
default_role = 'obj'
nitpicky = False
autodoc_member_order = 'bysource'
html_theme = 'alabaster'
# No network here: cross-references to other projects stay plain text.
intersphinx_mapping = {}
