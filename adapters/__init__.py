"""Adapters: implementations of the domain's ports and the drivers of the application."""
