"""hrd-bot engine: configuration, the neutral message model, transports, storage, content."""
