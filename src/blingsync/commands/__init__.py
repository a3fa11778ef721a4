"""The subcommands of `blingsync` (the root and the simulator/demo commands are in `cli`)."""
