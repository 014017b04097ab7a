"""The features a keyed event gets: the declared spec (``spec``), the rules every spec shares
(``recipe``), a key's state and its arithmetic (``aggregates``; the default spec's layout in
``windows``), one-hot encoding and window names (``encode``), and the same path offline
(``offline``). Pure: no faust, mode or aiokafka."""
