"""The web view: the pages in Faust's web server (``views``, the dashboard in ``static/``),
scores on request (``predict``), the token every request needs when one is set (``auth``), the
Prometheus exposition (``metrics``), and the interface the pages read the worker through
(``figures``)."""
