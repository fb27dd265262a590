"""Everything that talks to a server: Prometheus, the primary cluster, the secondary clusters."""
