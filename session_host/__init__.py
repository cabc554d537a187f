"""The session host: a long-running process that holds WhatsApp connections (not part of Lambda)."""
