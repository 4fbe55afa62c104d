"""kyro_openai."""
