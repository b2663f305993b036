"""The offline store: one Delta table per (project, feature group), partitioned by UTC event date."""
