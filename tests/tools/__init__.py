"""trice.tools: each tool, building them by name, the tool output cache and the hostile-input guard."""
