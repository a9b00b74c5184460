"""Tools a model may call: the call syntax and registry (:mod:`trice.tools.base`), the calculator,
and the paper's other tools in their own modules, built by name through :mod:`trice.tools.registry`.

Only the light core is re-exported here: importing :mod:`trice.tools.base` (as the data schema and
the task registry do) runs this file, which must therefore not import the tools built on retrieval
and generation, nor the registry that imports them.
"""

from __future__ import annotations

from trice.tools.base import Tool, ToolCall, ToolError, ToolRegistry, ToolResult, ToolSetupError, call_end, parse_call
from trice.tools.calculator import Calculator

__all__ = ["Calculator", "Tool", "ToolCall", "ToolError", "ToolRegistry", "ToolResult", "ToolSetupError", "call_end", "parse_call"]
