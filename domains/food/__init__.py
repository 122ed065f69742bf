"""The built-in food domain."""
