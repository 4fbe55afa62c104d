"""kyro_local."""
