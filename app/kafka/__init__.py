"""Kafka: how every client connects (``auth``), the topics streamlearn owns and creates
(``topics``, ``admin``), record batches out (``outbox``) and aiokafka's records in without a
ConsumerRecord each (``raw_fetch``)."""
