"""trice.responses: the generation backends, trice generate and few-shot prompts."""
