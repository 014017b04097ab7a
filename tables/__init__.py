"""State and its changelogs: one kind of state per module, each in a changelog-backed table.

``checkpoints`` (signed model checkpoints per shard), ``live_shard`` (one owned shard in memory,
and how its checkpoint is written), ``windows`` (per-key windowed activity), ``pending`` (the label
join's waiting halves), ``counters`` (dead letters and other counts, and what every refused
message goes through), with ``direct`` (writes straight to a store and a changelog, for
checkpoints) and ``anchor`` (writes placed in a shard's partition). Keys and plain-dict values
go through Faust's ``json`` codec; checkpoints and window values are bytes this package encodes
itself (``app/models/codec.py``'s signed pickles, ``orjson``), so Faust's recovery never decodes
them.
"""
