"""trice.pipeline: recipes, plans, stages and their fingerprints, the report, plug-ins."""
