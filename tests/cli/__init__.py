"""trice.cli: the trice command's flags and the errors every command gives."""
