"""The configuration: the pydantic schema, reading a file into it, and the generated reference."""
