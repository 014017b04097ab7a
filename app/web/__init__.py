"""The web view: the pages in Faust's web server (``views``, the dashboard in ``static/``), the
Prometheus exposition (``metrics``), and the interface both read the worker through
(``figures``)."""
