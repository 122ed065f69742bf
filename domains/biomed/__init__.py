"""The built-in biomed domain."""
