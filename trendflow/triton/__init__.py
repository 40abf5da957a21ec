"""Model serving: the local Triton server, the client, model build and mapping."""
