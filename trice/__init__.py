"""trice: teach language models when and how to use tools, from the tools' execution feedback."""

__version__ = "0.1.0"
