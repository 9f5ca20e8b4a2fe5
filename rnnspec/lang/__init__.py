"""The spec language: the models, reading and locating errors, static analysis, summary and schema."""
