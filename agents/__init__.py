"""The stages that move messages, one per module: the engine service (events), the shard
keeper, the re-key stage, the label agents (validate, join, learn) and the guard."""
