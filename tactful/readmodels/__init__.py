"""Read models: what the pages, the API and the report show, computed from the store's
ports (views of a person, the value score)."""
