"""trice.judge: judging responses with tool execution, and second readings."""
