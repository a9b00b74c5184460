"""trice.generation: models, backends, generation, stopping, prefix cache, the remote client, export."""
