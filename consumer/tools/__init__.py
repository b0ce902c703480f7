"""Developer tools (the simulator, demo/bench/test support): never imported by the service's run path."""
