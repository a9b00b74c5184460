"""trice.tasks: the task registry, metrics and input rows."""
