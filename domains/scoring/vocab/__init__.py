"""Benchmark vocabularies shipped as package data (copies of the public dataset class lists)."""
