"""End to end: several stages or a whole `trice run`, real models, the README, killed processes."""
