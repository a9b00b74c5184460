"""trice.core: the tool interface, call formats, templates and prompts, paths and the example schema."""
