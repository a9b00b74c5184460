"""trice.data: the dataset loaders, the data stage and the download of the data directory."""
