"""Is the export valid? The input contract (tables, enums, rules), calendars and ingest."""
