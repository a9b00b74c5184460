"""trice.tasks: the task registry, metrics and prompts."""
