"""Faust tables: one kind of state per module, each changelog-backed.

Keys and plain-dict values go through Faust's ``json`` codec (a table takes its serializer from
its ``value_type`` record, else ``json``); model checkpoints are a record with the signed-pickle
``river`` codec (``app/codec.py``).
"""
