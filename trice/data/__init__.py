"""Dataset loaders: every dataset becomes a list of :class:`trice.data.schema.Example`."""
