"""Keeping a registry healthy: the commands people run on purpose.

* ``audit`` finds what is wrong with the layers and applies the fixes that
  lose nothing (``fixes``);
* ``fields`` (``set``, ``unset``, ``promote``, ``demote``) edits one entry's
  fields in a chosen layer;
* ``layer_edit`` is how both write: the one deliberate writer of the curated
  layer, locked, checked and format-keeping;
* ``layer_schema`` is the JSON Schema of a layer file, for editors;
* ``backends`` (``show-backends``) asks each endpoint in use whether it answers.

See docs/health.md.
"""
