"""trice.generation: models, adapters, decoding, stopping, prefix cache, the remote client, export."""
