"""Running the service unattended: one writer per warehouse, retries on the network, and what
the CLI remembers between runs."""
