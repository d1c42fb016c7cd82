"""Training the joint model on cached backbone features: data, batching, loop, checkpoints, runs."""
