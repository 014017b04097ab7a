"""What comes in: the event and label contracts and the checks raw input must pass
(``records``), a team's own shape mapped onto them (``mapping``), Avro in Confluent's wire format
decoded for the mapping (``avro``), the user's transform (``transform``), and what a raw events
message goes through before windows and models (``intake``). Pure: no faust, mode or aiokafka."""
