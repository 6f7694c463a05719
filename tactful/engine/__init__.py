"""The engine: the batch that folds events into persons (the core does the
thinking), the importer, the writer that group-commits webhooks, and the outbox messages."""
