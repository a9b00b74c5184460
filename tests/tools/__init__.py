"""trice.tools: the tool registry, each tool, the tool output cache and the hostile-input guard."""
